-- Date and time functions (src/query/exec/datetime.rs) against SQLite's date.c.
-- Time values: dates, times, T separator, fractions, time zones, julian days, unix times.
SELECT date('2024-01-05'), time('2024-01-05'), datetime('2024-01-05')
SELECT datetime('2024-01-05T10:20'), datetime('2024-01-05 10:20:30'), datetime('2024-01-05 10:20:30.999')
SELECT datetime('2024-01-05   T10:20'), datetime('2024-01-05TT10:20'), datetime('2024-01-05 10:20:30.5 ')
SELECT time('10:20'), time('10:20:30'), time('10:20:30.123456'), time('24:00'), time('24:59:59')
SELECT datetime('10:20'), date('10:20'), julianday('10:20')
SELECT datetime('2024-01-05 10:00+05:30'), datetime('2024-01-05 10:00-02:00'), datetime('2024-01-05 10:00Z'), datetime('2024-01-05 10:00 z')
SELECT datetime('2024-01-05 23:00-02:00'), date('2024-01-05 23:00-02:00'), time('01:00+02:00')
SELECT datetime('2024-01-05 10:00+14:00'), datetime('2024-01-05 10:00+15:00'), datetime('2024-01-05 10:00+5:30')
SELECT date('2024-02-30'), julianday('2024-02-30'), date('2024-02-30', '+0 days'), date('2023-02-29', '+0 days')
SELECT date('2024-13-01'), date('2024-00-01'), date('2024-01-32'), date('2024-01-00'), time('25:00'), time('10:60'), time('10:00:60')
SELECT date('2024-1-5'), date('24-01-05'), date(' 2024-01-05'), date('2024-01-05 '), date('2024-01-05x'), date('2024/01/05')
SELECT date(''), date('abc'), date('now ') IS NULL, date(NULL), time(NULL), datetime(NULL), julianday(NULL), unixepoch(NULL), strftime('%Y', NULL), strftime(NULL, '2024-01-05')
SELECT date('0000-01-01'), date('9999-12-31'), datetime('9999-12-31 23:59:59'), date('-0001-06-15'), date('-4713-11-24'), julianday('-4713-11-24 12:00')
SELECT date('-4714-01-01'), julianday('0000-01-01'), julianday('1970-01-01'), julianday('2000-01-01 12:00')
SELECT julianday('2024-01-05 13:04:05.123'), julianday('2024-01-05 13:04:05.0004'), julianday('2024-01-05 13:04:05.0005')
SELECT unixepoch('1970-01-01'), unixepoch('2024-01-05 13:04:05'), unixepoch('1969-12-31 23:59:59'), unixepoch('0000-01-01'), unixepoch('9999-12-31 23:59:59')
SELECT date(2460315.5), datetime(2460315.25), datetime(0), datetime(0.5), date(5373484.4), date(5373484.5), date(-1), date(-0.5)
SELECT date('2460315.5'), datetime(' 2460315.5 '), date('+2460315.5'), date('2.4603155e6'), date('2460315.'), date('.5e7'), date('0x10'), date('2460315.5x')
-- Modifiers: unixepoch, auto, julianday.
SELECT datetime(1700000000, 'unixepoch'), datetime(1700000000.5, 'unixepoch'), datetime('1700000000', 'unixepoch'), datetime(-1, 'unixepoch'), datetime(-62135596800, 'unixepoch')
SELECT datetime(253402300799, 'unixepoch'), datetime(253402300800, 'unixepoch'), datetime(-210866760000, 'unixepoch'), datetime(-210866760001, 'unixepoch')
SELECT datetime(1e18, 'unixepoch'), datetime(9223372036854775807, 'unixepoch'), datetime(-9223372036854775808, 'unixepoch')
SELECT date('2024-01-05', 'unixepoch'), date(1700000000, '+1 day', 'unixepoch'), date(1700000000, 'unixepoch', 'unixepoch'), date(1700000000, 'UNIXEPOCH')
SELECT datetime(1700000000, 'auto'), datetime(2460315.5, 'auto'), datetime(0, 'auto'), datetime(-1, 'auto'), datetime(253402300799, 'auto'), datetime(253402300800, 'auto'), datetime('2024-01-05', 'auto')
SELECT datetime(5373484, 'auto'), datetime(5373485, 'auto'), datetime(-210866760000, 'auto'), datetime(1700000000, '+1 day', 'auto')
SELECT date(2460315.5, 'julianday'), date(1700000000, 'julianday'), date('2024-01-05', 'julianday'), date(2460315.5, '+1 day', 'julianday'), date(-1, 'julianday')
-- Modifiers: +N units, fractions, signs, case, spacing.
SELECT date('2024-01-05', '+1 day'), date('2024-01-05', '+1 days'), date('2024-01-05', '-1 DAYS'), date('2024-01-05', '1 day'), date('2024-01-05', '+1  day')
SELECT datetime('2024-01-05', '+1.5 days'), datetime('2024-01-05', '-0.25 days'), datetime('2024-01-05', '+36 hours'), datetime('2024-01-05', '+90 minutes'), datetime('2024-01-05', '+3661 seconds')
SELECT datetime('2024-01-05 10:00', '+1.5 hours'), datetime('2024-01-05', '+0.001 seconds'), strftime('%f', '2024-01-05', '+0.0005 seconds'), strftime('%f', '2024-01-05', '-0.0005 seconds')
SELECT date('2024-01-31', '+1 month'), date('2024-01-31', '-1 month'), date('2024-03-31', '-1 month'), date('2024-01-15', '+13 months'), date('2024-01-15', '-13 months'), date('2024-01-15', '-12 months')
SELECT datetime('2024-01-01', '+1.5 months'), datetime('2024-01-01', '-1.5 months'), date('2024-02-29', '+1 year'), date('2024-02-29', '-4 years'), datetime('2024-01-01', '+0.5 years')
SELECT date('2024-01-05', '+10'), date('2024-01-05', '+1 fortnight'), date('2024-01-05', '+1 day '), date('2024-01-05', ' +1 day'), date('2024-01-05', '+1 dayss'), date('2024-01-05', '+x days')
SELECT date('2024-01-05', '+5373485 days'), date('2024-01-05', '+5373484 days'), date('2024-01-05', '-2460000 days'), date('2024-01-05', '+1e3 days'), date('2024-01-05', '+176546 months'), date('2024-01-05', '+14713 years')
SELECT date('2024-01-05', '+7980 years'), date('2024-01-05', '-6738 years'), date('2024-01-05', '-6737 years'), date('9999-12-31', '+1 day'), date('0000-01-01', '-1 day')
SELECT datetime('2024-01-05', '+01:30'), datetime('2024-01-05', '-01:30'), datetime('2024-01-05', '+01:30:15.5'), datetime('2024-01-05', '-24:00'), datetime('2024-01-05', '01:30'), datetime('2024-01-05', '+1:30'), datetime('2024-01-05', '+01:60')
-- Modifiers: start of, weekday, subsec, unknown ones.
SELECT datetime('2024-05-17 10:20:30', 'start of day'), datetime('2024-05-17 10:20:30', 'start of month'), datetime('2024-05-17 10:20:30', 'start of year'), datetime('2024-05-17', 'start of week'), datetime('2024-05-17', 'START OF MONTH')
SELECT datetime('2024-01-05', 'start of month', '+1 month', '-1 day'), date('2024-02-10', 'start of year', '+59 days'), date(1700000000, 'unixepoch', 'start of month'), date(1700000000, 'start of month')
SELECT date('2024-01-05', 'weekday 0'), date('2024-01-05', 'weekday 5'), date('2024-01-05', 'weekday 6'), date('2024-01-05', 'weekday 1.0'), date('2024-01-05', 'weekday 1.5'), date('2024-01-05', 'weekday 7'), date('2024-01-05', 'weekday -1'), date('2024-01-05', 'WEEKDAY 3')
SELECT datetime('2024-01-05 10:00', 'weekday 4'), date('2024-01-05', 'weekday  2'), date('2024-01-05', 'weekday'), date('2024-01-05', 'weekdays 2')
SELECT date('2024-01-05', 'nonsense'), date('2024-01-05', ''), date('2024-01-05', NULL), date('2024-01-05', 1), date('2024-01-05', 1.5)
-- strftime: every code SQLite 3.40 knows, and unknown ones.
SELECT strftime('%d|%f|%H|%j|%J|%m|%M|%s|%S|%w|%W|%Y|%%', '2024-01-05 13:04:05.123')
SELECT strftime('%d|%f|%H|%j|%J|%m|%M|%s|%S|%w|%W|%Y', '2021-01-03'), strftime('%j %W %w', '2024-12-31'), strftime('%j %W %w', '2023-01-01'), strftime('%W', '2024-01-01')
SELECT strftime('%f', '2024-01-05 10:00:59.9999'), strftime('%f', '2024-01-05 10:00:07'), strftime('%S', '2024-01-05 10:00:59.9999'), strftime('%s', '1969-12-31'), strftime('%s', '0000-01-01')
SELECT strftime('%J', '2000-01-01'), strftime('%J', '2024-01-05 13:04:05.123'), strftime('%J', 0), strftime('%J', '-4713-11-24 12:00')
SELECT strftime('', '2024-01-05'), strftime('plain text', '2024-01-05'), strftime('%', '2024-01-05'), strftime('%Q', '2024-01-05'), strftime('%Y-%', '2024-01-05'), strftime('é%Yü', '2024-01-05'), strftime('%Y', '2024-01-05', '+1 year')
SELECT strftime(5, '2024-01-05'), strftime('%Y', 2460315.5), strftime('%Y', '-0001-01-01'), strftime('%Y %m %d', 1700000000, 'unixepoch')
-- Over rows: numbers of t1 as days and unix times; grouping, ordering, filters.
SELECT k, date(1700000000 + k*86400, 'unixepoch') FROM t1 WHERE k <= 20
SELECT k, a, datetime(1700000000 + a*3600, 'unixepoch'), date('2024-01-31', a || ' months') FROM t1 WHERE k <= 40
SELECT k, b, strftime('%Y-%m-%d %H:%M:%S|%j|%w|%W', 1600000000 + b*997*3600, 'unixepoch') FROM t1
SELECT k, r, datetime(r, 'unixepoch'), julianday(2460000 + r), date(r * 1000000, 'unixepoch') FROM t1 WHERE k % 3 = 0
SELECT k, s, date(s), date('2024-01-05', s) FROM t1 WHERE k <= 30
SELECT strftime('%Y-%m', 1700000000 + b*86400*3, 'unixepoch') AS month, COUNT(*), SUM(a) FROM t1 GROUP BY month
SELECT strftime('%w', 1700000000 + k*86400, 'unixepoch') AS wd, COUNT(*) FROM t1 GROUP BY wd HAVING COUNT(*) > 1
ordered: SELECT k, date(1700000000 + b*86400, 'unixepoch') AS d FROM t1 WHERE b IS NOT NULL ORDER BY d DESC, k LIMIT 15
ordered: SELECT k FROM t1 WHERE date(1700000000 + b*86400, 'unixepoch') BETWEEN '2024-01-01' AND '2024-06-30' ORDER BY k
SELECT k, julianday(date(1700000000 + b*86400, 'unixepoch')) - julianday('2023-11-14') FROM t1 WHERE k < 25
SELECT k, unixepoch(datetime(1700000000 + b*1000, 'unixepoch')) - 1700000000 = b*1000 FROM t1
SELECT DISTINCT strftime('%m', 1700000000 + k*86400*7, 'unixepoch') FROM t1
SELECT MIN(date(1700000000 + b*86400, 'unixepoch')), MAX(date(1700000000 + b*86400, 'unixepoch')), COUNT(DISTINCT date(1700000000 + b*86400, 'unixepoch')) FROM t1
SELECT t1.k, t2.k, date(1700000000 + t1.b*86400 + t2.c*3600, 'unixepoch') FROM t1 JOIN t2 ON t1.k = t2.t1_k WHERE t2.c < 5
SELECT date(1700000000 + b*86400, 'unixepoch') FROM t1 WHERE 0
SELECT COUNT(*), MAX(date(b, 'unixepoch')) FROM t1 WHERE k < 0
-- 'now': only its shape.
SELECT length(date('now')), length(datetime('now')), length(time()), date() = date('now'), julianday('now') > 2460000, unixepoch() > 1700000000, strftime('%Y') >= '2024'
SELECT date('NOW') = date('now'), datetime('now', 'start of day') = date('now') || ' 00:00:00', date('now', '+1 day') > date('now')
-- Errors: wrong argument kinds still give NULL; unknown functions refuse.
SELECT date(1, 2, 3), datetime('2024-01-05', 'start of month', 'start of year', '+1 day', '-1 hour', 'weekday 1')
SELECT timediff('2024-01-05', '2024-01-01')
-- Combinations: zones then modifiers, times alone, chains.
SELECT datetime('2024-01-05 10:00+05:30', '+1 hour'), datetime('2024-01-05 10:00+05:30', 'start of day'), datetime('10:20', 'start of day'), time('12:00', '+1 day'), datetime('12:00', '+1 day')
SELECT date('2024-01-05', 'start of month '), date('2024-01-05', '+1   days'), date('2024-01-05', '+1e1 days'), date('2024-01-05', '+.5 days'), date('2024-01-05', '+1. days'), date('2024-01-05', '++1 days')
SELECT datetime('2024-01-05 10:20:30', '-10:20:30'), datetime('2024-01-05', '+23:59:59.999'), datetime('2024-01-05', '+00:00:00.5'), time('00:00', '-00:00:01')
SELECT datetime(1700000000, 'unixepoch', '+1 month', 'start of day', 'weekday 1', '-6 hours'), unixepoch(1700000000, 'unixepoch', '+1 day') - 1700000000, julianday(1700000000, 'unixepoch') - 2440587.5
SELECT strftime('%H:%M', '2024-01-05 23:59:59.9999'), strftime('%s', '2024-01-05 00:00:00.999'), strftime('%W %j', '2024-01-07'), strftime('%W %j', '2024-01-08'), strftime('%W', '2023-01-01'), strftime('%W', '2023-01-02')
