-- Scalar expressions and the string and math functions (issue 18), each
-- against sqlite3: NULLs, empty inputs, ties, affinity, edge values.
-- CASE, both forms, with and without ELSE
ordered: SELECT k, CASE WHEN a > 0 THEN 'pos' WHEN a < 0 THEN 'neg' ELSE 'zero' END FROM t1 ORDER BY k
ordered: SELECT k, CASE WHEN a > 0 THEN 'pos' WHEN a < 0 THEN 'neg' END FROM t1 ORDER BY k
ordered: SELECT k, CASE a WHEN 1 THEN 'one' WHEN 2 THEN 'two' ELSE a END FROM t1 ORDER BY k
ordered: SELECT k, CASE a WHEN '1' THEN 'one' END, CASE s WHEN 10 THEN 'ten' END FROM t1 ORDER BY k
ordered: SELECT k, CASE g WHEN 'red' THEN 1 WHEN 'blue' THEN 2.5 END FROM t1 ORDER BY k
ordered: SELECT k, CASE NULL WHEN NULL THEN 'x' ELSE 'y' END, CASE WHEN NULL THEN 1 ELSE 0 END FROM t1 WHERE k < 3 ORDER BY k
SELECT CASE 3 WHEN '3' THEN 'y' ELSE 'n' END, CASE '3' WHEN 3 THEN 'y' ELSE 'n' END, CASE 3 WHEN 3.0 THEN 'y' END
SELECT CASE WHEN 0 THEN 1 WHEN 0.5 THEN 2 WHEN 'x' THEN 3 END, CASE WHEN '1abc' THEN 'yes' END
SELECT CASE WHEN 1 THEN 'a' ELSE abs(-9223372036854775808) END
SELECT CASE WHEN 0 THEN abs(-9223372036854775808) END
SELECT g, CASE WHEN COUNT(*) > 60 THEN 'many' ELSE 'few' END FROM t1 GROUP BY g
SELECT CASE g WHEN 'red' THEN 'r' ELSE 'o' END AS c, COUNT(*) FROM t1 GROUP BY c
SELECT g, SUM(CASE WHEN a > 0 THEN 1 ELSE 0 END), COUNT(CASE WHEN b > 500 THEN 1 END) FROM t1 GROUP BY g
ordered: SELECT k FROM t1 WHERE CASE WHEN a IS NULL THEN b > 900 ELSE a = 5 END ORDER BY k
ordered: SELECT k, a FROM t1 ORDER BY CASE WHEN a IS NULL THEN 1 ELSE 0 END, a, k LIMIT 20
-- IIF, NULLIF, IFNULL, COALESCE
ordered: SELECT k, iif(a > 0, 'p', 'np'), iif(a, 1, 0), iif(NULL, 1, 2) FROM t1 ORDER BY k
ordered: SELECT k, nullif(a, 0), nullif(g, 'red'), nullif(s, 10), nullif(a, '1') FROM t1 ORDER BY k
SELECT nullif(1, 1), nullif(1, 1.0), nullif('1', 1), nullif(NULL, 1), nullif(1, NULL), nullif('', '')
ordered: SELECT k, ifnull(s, 'none'), ifnull(r, a), coalesce(r, a, b, 0) FROM t1 ORDER BY k
SELECT iif(1, 'a'), 1
SELECT nullif(1)
-- IS, IS NOT, IS [NOT] DISTINCT FROM, IS TRUE/FALSE
ordered: SELECT k, a IS 1, a IS NOT 1, a IS NULL, a IS b FROM t1 ORDER BY k
ordered: SELECT k, a IS '1', s IS 10, g IS 'red', r IS NOT 1.5 FROM t1 ORDER BY k
ordered: SELECT k, a IS DISTINCT FROM 2, a IS NOT DISTINCT FROM 2, a IS DISTINCT FROM NULL FROM t1 ORDER BY k
SELECT NULL IS NULL, NULL IS 1, 1 IS 1.0, 'a' IS 'a', 'a' IS 'A', NULL IS NOT NULL, 1 IS NOT 2
SELECT NULL IS DISTINCT FROM NULL, 1 IS DISTINCT FROM NULL, NULL IS NOT DISTINCT FROM NULL, 2 IS NOT DISTINCT FROM 2.0
ordered: SELECT k FROM t1 WHERE a IS NOT NULL AND a IS NOT 0 ORDER BY k
ordered: SELECT t1.k, t2.k FROM t1 JOIN t2 ON t2.t1_k IS t1.k ORDER BY t1.k, t2.k
ordered: SELECT k, a IS TRUE, a IS FALSE, a IS NOT TRUE, a IS NOT FALSE FROM t1 ORDER BY k
SELECT NULL IS TRUE, NULL IS FALSE, 0.5 IS TRUE, 'x' IS FALSE, NULL IS NOT TRUE
-- GLOB and NOT GLOB, glob() and like() as functions
ordered: SELECT k, s FROM t1 WHERE s GLOB 'a*' ORDER BY k
ordered: SELECT k, s FROM t1 WHERE s GLOB '*[Pp]*' ORDER BY k
ordered: SELECT k, s FROM t1 WHERE s NOT GLOB '*a*' ORDER BY k
ordered: SELECT k, s FROM t1 WHERE s GLOB '?' ORDER BY k
ordered: SELECT k, s FROM t1 WHERE s GLOB '[^a-z]*' ORDER BY k
ordered: SELECT k, s FROM t1 WHERE s GLOB '*[%_]*' ORDER BY k
SELECT 'abc' GLOB 'a*', 'abc' GLOB 'A*', 'abc' GLOB 'a?c', 'abc' GLOB '[a-c]bc', 'abc' GLOB '[^a]bc', 'a*c' GLOB 'a[*]c'
SELECT 'b' GLOB '[]b]', ']' GLOB '[]b]', 'é' GLOB '?', '' GLOB '', '' GLOB '*', 'x' GLOB '', 'a' GLOB '[abc'
SELECT NULL GLOB 'a', 'a' GLOB NULL, 12 GLOB '1*', 1.5 GLOB '1.*', 'x' NOT GLOB 'y'
SELECT glob('a*', 'abc'), glob('*c', 'abc'), glob(NULL, 'a'), glob('1?', 12)
SELECT like('a%', 'ABC'), like('a!%', 'a%', '!'), like('a', NULL), like('_', 'é'), like('%b%', 'abc')
SELECT like('a%', 'a', 'xy')
ordered: SELECT k FROM t1 WHERE like('%a%', s) ORDER BY k
-- CAST with SQLite's conversions and type names
SELECT CAST('12abc' AS INTEGER), CAST('1.9' AS INTEGER), CAST('1e3' AS INTEGER), CAST(' -7x' AS INT), CAST('abc' AS INTEGER), CAST('' AS INTEGER)
SELECT CAST(1e20 AS INTEGER), CAST(-1e20 AS INTEGER), CAST(-2.9 AS INTEGER), CAST(2.9 AS INTEGER), CAST('9223372036854775808' AS INTEGER), CAST('-9223372036854775809' AS INTEGER)
SELECT CAST('0x1A' AS INTEGER), CAST('+5' AS INTEGER), CAST(NULL AS INTEGER), CAST('  42  ' AS BIGINT), CAST('-0' AS INTEGER)
SELECT CAST('12abc' AS REAL), CAST('abc' AS REAL), CAST(5 AS REAL), CAST('1e3' AS REAL), CAST('.5' AS REAL), CAST('5.' AS REAL), CAST('-' AS REAL)
SELECT CAST('12abc' AS NUMERIC), CAST('1.5x' AS NUMERIC), CAST('1e3' AS NUMERIC), CAST(3.0 AS NUMERIC), CAST('3.0' AS NUMERIC), CAST('abc' AS NUMERIC), CAST(' 12 ' AS NUMERIC)
SELECT CAST(3.0 AS TEXT), CAST(12 AS VARCHAR(10)), CAST(0.1 AS CHAR), CAST(1.5 AS DOUBLE PRECISION), CAST('7' AS BIGINT), CAST('7.5' AS BOOLEAN), CAST(5 AS FLOAT), CAST('5' AS CLOB)
SELECT CAST('7.5x' AS DATE), CAST('x' AS STRING), CAST(2.5 AS INTEGER) = 2, CAST(1.0/3 AS TEXT), CAST(-0.0 AS TEXT), CAST(100000000000000000000.0 AS TEXT)
ordered: SELECT k, CAST(a AS TEXT), CAST(r AS INTEGER), CAST(s AS INTEGER), CAST(b AS REAL), CAST(s AS NUMERIC) FROM t1 ORDER BY k
ordered: SELECT k, CAST(r AS TEXT) || '!', CAST(a AS REAL) / 2, CAST(g AS TEXT) FROM t1 ORDER BY k
ordered: SELECT k FROM t1 WHERE CAST(a AS TEXT) = 3 ORDER BY k
ordered: SELECT k FROM t1 WHERE CAST(s AS INTEGER) = '10' ORDER BY k
ordered: SELECT k FROM t1 WHERE CAST(b AS TEXT) > 5 ORDER BY k
SELECT CAST(a AS INTEGER) AS ai, COUNT(*) FROM t1 GROUP BY ai
SELECT CAST(3 AS TEXT) = 3, CAST('3' AS INTEGER) = '3', CAST('3' AS REAL) = '3.0', CAST(3 AS NUMERIC) = '3'
-- BETWEEN and IN with expressions on both sides
ordered: SELECT k FROM t1 WHERE a + 1 BETWEEN b / 200 AND b / 100 ORDER BY k
ordered: SELECT k FROM t1 WHERE b BETWEEN a * 100 AND (a + 3) * 100 ORDER BY k
ordered: SELECT k FROM t1 WHERE s BETWEEN 'a' AND 'c' ORDER BY k
ordered: SELECT k FROM t1 WHERE s NOT BETWEEN g AND 'z' ORDER BY k
ordered: SELECT k FROM t1 WHERE a IN (b % 5, b % 7, -a) ORDER BY k
ordered: SELECT k FROM t1 WHERE a + 1 NOT IN (1, 2, b) ORDER BY k
ordered: SELECT k FROM t1 WHERE upper(g) IN ('RED', lower('BLUE')) ORDER BY k
ordered: SELECT k, a IN (), a NOT IN () FROM t1 WHERE k < 5 ORDER BY k
SELECT 3 BETWEEN 1 AND 5, '3' BETWEEN 1 AND 5, 3 BETWEEN '1' AND '5', NULL BETWEEN 1 AND 2, 1 BETWEEN 1 AND 1
SELECT 1 IN (1.0), '1' IN (1), 1 IN ('1'), NULL IN (), 1 IN (NULL, 1)
-- instr, replace, trim, ltrim, rtrim
ordered: SELECT k, instr(s, 'a'), instr(g, 'e'), instr(s, ''), instr(s, NULL) FROM t1 ORDER BY k
SELECT instr('abcabc', 'c'), instr('abc', ''), instr('', ''), instr(NULL, 'a'), instr(12345, 34), instr('héllo', 'l'), instr('abc', 'd')
ordered: SELECT k, replace(s, 'a', 'A'), replace(g, 'e', ''), replace(s, '', 'x') FROM t1 ORDER BY k
SELECT replace('aaa', 'a', 'bb'), replace('abc', '', 'x'), replace(NULL, 'a', 'b'), replace('abc', 'b', NULL), replace(123, 2, 9), replace(123, '', 'x'), replace('x', 'x', '')
SELECT trim('  x  '), ltrim('  x  '), rtrim('  x  '), ltrim('xxaxx', 'x'), rtrim('xxaxx', 'x'), trim('abcba', 'ab'), trim(12.0)
SELECT trim(NULL), trim('x', NULL), trim('  x  ', ''), ltrim('', 'a'), rtrim('ééa', 'é'), trim('aé', 'éa'), ltrim(100, 1)
ordered: SELECT k, trim(s, 'a'), ltrim(g, 'r'), rtrim(s, 'ep'), trim(' ' || s || ' ') FROM t1 ORDER BY k
-- hex, quote, char, unicode, length on numbers
ordered: SELECT k, hex(s), hex(a), hex(r), quote(s), quote(a), quote(g) FROM t1 ORDER BY k
SELECT hex(NULL), hex(12), hex(1.5), hex('é'), hex(''), hex(-1)
SELECT quote(NULL), quote(1.5), quote(12), quote('it''s'), quote(''), quote(-0.0), quote(1e300), quote(0.5)
SELECT char(), char(65, 66), char(233.7), char('66'), char(1114112), char(-1), char(8364)
SELECT unicode(''), unicode(NULL), unicode(12), unicode('é'), unicode('abc'), unicode(char(128512))
ordered: SELECT k, unicode(s), unicode(g), char(coalesce(unicode(s), 63)) FROM t1 ORDER BY k
SELECT length(12345), length(-1.5), length(1.0), length(0.1), length(''), length(-0), length(100000000000000000000.0)
ordered: SELECT k, length(a), length(b), length(r), length(s) FROM t1 ORDER BY k
-- substr and substring forms
SELECT substr('hello', 2), substring('hello', 2, 3), substr('hello', -3, 2), substr('hello', 0, 1), substr('héllo', 2, 2), substr(NULL, 1), substr('x', NULL)
SELECT substr(12345, -2), substr(1.5, 2), substr('hello', 2.7, 1.9)
ordered: SELECT k, substr(s, a), substr(s, 2, a), substring(g, -2) FROM t1 ORDER BY k
-- upper, lower on every type
SELECT upper(1.5), lower('ÀBC'), upper(NULL), upper('straße'), lower(12)
-- printf and format
SELECT printf('%d|%5d|%-5d|%05d|%+d|%x|%X|%o', 42, 42, 42, 42, 42, 255, 255, 8)
SELECT printf('%s|%10s|%-10s|%.2s|%c|%%|%q|%Q', 'hi', 'hi', 'hi', 'hello', 'xyz', 'it''s', 'a''b')
SELECT printf('%f|%.2f|%8.3f|%-8.1f|%.0f|%.0f|%.0f', 3.14159, 2.675, -1.5, 1.25, 0.5, 1.5, 2.5)
SELECT printf('%d', 'abc'), printf('%d', 3.9), printf('%s', 3.0), printf('%f', '1.5x'), printf('%d %d', 1), printf(NULL), printf('%s', NULL), printf('%d', NULL)
SELECT printf('%x', -1), printf('%.3d', 5), printf('%lld', 5), printf('%q', NULL), printf('%Q', NULL), printf('abc'), printf(12), format('%,d', 1234567)
SELECT printf('%5.1s|', 'abc'), printf('%-3d|', -5), printf('% d', 5), printf('%+.2f', 0.125), printf('%#x', 255), printf('%#o', 8), printf('%*d|', 5, 42), printf('%-*d|', 5, 42)
SELECT printf('%.1f', 0.05), printf('%.1f', 0.15), printf('%.1f', 0.25), printf('%.2f', 1.005), printf('%.3f', 1e-10), printf('%.2f', -0.001), printf('%10.4f|', 3.14159265)
SELECT printf('%d%%', 50), printf('%s and %s', 'a', 'b'), printf('%5s|%-5s|', 'é', 'é'), printf('%,d', -1234), printf('%,d', 100), printf('%u', 7)
ordered: SELECT k, printf('%04d-%s-%.1f', b, g, r), format('%5.2f', r), printf('%3d%%', a) FROM t1 ORDER BY k
ordered: SELECT k, printf('%q', s), printf('%-8s|', g), printf('%x', b) FROM t1 ORDER BY k
-- abs, sign, round
SELECT abs(-9223372036854775808)
SELECT abs(-9223372036854775807), abs(-5), abs(5), abs(-5.5), abs(NULL), abs('-5'), abs('abc'), abs('-5x'), abs(' 7'), abs(-0.0)
ordered: SELECT k, abs(a), abs(r), abs(s), sign(a), sign(r), sign(s) FROM t1 ORDER BY k
SELECT sign(-3), sign(0), sign(2.5), sign('x'), sign('-2'), sign(NULL), sign(-0.0), sign('1e3'), sign('5x')
SELECT round(2.5), round(-2.5), round(2.675, 2), round(5), round('3.7'), round(1.23456, 3), round(NULL), round(1.5, NULL), round(1234.5678, -2), round(0.5, 40)
SELECT round(0.49999999999999994), round(-0.5), round(1.005, 2), round(0.125, 2), round(0.285, 2), round(-1.5), round(1e16), round(123456.789, 1), round('abc'), round(2.5, '1')
SELECT round(9223372036854775807), round(-9223372036854775808), round(4503599627370497.5), round(0.1 + 0.2, 15), round(1.0/3, 10)
ordered: SELECT k, round(r), round(r, 1), round(r, a), round(a / 3.0, 2), round(b) FROM t1 ORDER BY k
SELECT g, round(AVG(r), 2), round(SUM(r) / COUNT(*), 3) FROM t1 GROUP BY g
-- min and max with several arguments are scalar
SELECT max(1, 2.5, '3'), min(1, 'a', 0.5), max(1, NULL), min('b', 'a'), max(3), min(1, 1.0), max(1, 1.0), max('a', 'B')
ordered: SELECT k, max(a, b), min(a, b, r), max(s, g), min(a, 0) FROM t1 ORDER BY k
SELECT g, max(MIN(a), 0), min(MAX(b), 500) FROM t1 GROUP BY g
ordered: SELECT k FROM t1 WHERE max(a, 0) = min(b, 3) ORDER BY k
-- integer overflow of + - * and the smallest integer
SELECT 9223372036854775807 + 1, -9223372036854775807 - 2, 9223372036854775807 * 2, 4611686018427387904 * 2, -9223372036854775808 - 1
SELECT -9223372036854775808, -9223372036854775808 % -1, (-9223372036854775807 - 1) % -1, (-9223372036854775807 - 1) / -1, -(-9223372036854775808)
SELECT 9223372036854775807 + 0, 9223372036854775808, -9223372036854775808 * -1, 5 % -3, -5 % -3, 5.5 % -2
ordered: SELECT k, b * 9223372036854775807, a - 9223372036854775807, b + 9223372036854775000 FROM t1 ORDER BY k
-- math functions
SELECT ceil(1.2), ceil(3), ceil('2.5'), ceil('x'), ceiling(-1.2), floor(-1.5), floor(7), trunc(2.7), trunc(-2.7), trunc(5)
SELECT ln(0), log(-1), sqrt(-1), log(2, 8), log('100'), log(100), log10(1000), log2(8), ln(exp(1))
SELECT pow(2, 3), power(2, 0.5), exp(0), exp('1x'), mod(7, 3), mod(7.5, 2), mod(-7, 3), mod(7, 0), mod('x', 2)
SELECT degrees(1), radians(180), pi(), sin(0), cos(0), tan(0), asin(1), acos(1), atan(1), atan2(1, 2), acos(2)
SELECT sinh(1), cosh(1), tanh(1), asinh(1), acosh(2), atanh(0.5), sqrt(2), sqrt(NULL), sqrt('4')
ordered: SELECT k, sqrt(b), ceil(r), floor(r), trunc(r), mod(b, 7), pow(a, 2), exp(a), ln(b), log10(b) FROM t1 ORDER BY k
ordered: SELECT k, sqrt(s), ceil(s), abs(s) FROM t1 ORDER BY k
SELECT g, floor(AVG(b)), ceil(SUM(r)) FROM t1 GROUP BY g
-- errors both sides refuse
SELECT nosuchfn(1)
SELECT instr('a')
SELECT replace('a', 'b')
SELECT round()
SELECT sign(1, 2)
SELECT pi(1)
SELECT atan2(1)
SELECT char
-- functions in WHERE, GROUP BY, ORDER BY and joins
ordered: SELECT k, s FROM t1 WHERE instr(lower(s), 'a') > 0 AND length(s) BETWEEN 2 AND 6 ORDER BY k
ordered: SELECT k FROM t1 WHERE abs(a) = 3 OR round(r) = 10 ORDER BY k
SELECT substr(g, 1, 1) AS c, COUNT(*), SUM(abs(a)) FROM t1 GROUP BY c
SELECT iif(a > 0, 'p', 'n') AS sgn, COUNT(*), MAX(b) FROM t1 GROUP BY sgn
ordered: SELECT k, s FROM t1 ORDER BY length(s), s, k LIMIT 20
ordered: SELECT k, r FROM t1 ORDER BY abs(r) DESC, k LIMIT 10
ordered: SELECT t1.k, t2.s FROM t1 JOIN t2 ON t2.t1_k = t1.k WHERE upper(t2.s) = 'TEA' AND t1.a IS NOT NULL ORDER BY t1.k, t2.k
ordered: SELECT t1.k, CASE WHEN t2.k IS NULL THEN 'none' ELSE t2.s END FROM t1 LEFT JOIN t2 ON t2.t1_k = t1.k ORDER BY t1.k, t2.k
SELECT DISTINCT CASE WHEN a > 0 THEN 'p' WHEN a < 0 THEN 'n' END FROM t1
SELECT DISTINCT sign(a), typeof(a) FROM t1
SELECT g, COUNT(*) FROM t1 GROUP BY g HAVING max(COUNT(*), 10) > 60
ordered: SELECT k, coalesce(nullif(trim(s), ''), '-'), ifnull(iif(a > 0, a, NULL), 0) FROM t1 ORDER BY k
ordered: SELECT k, CASE WHEN s GLOB '[0-9]*' THEN CAST(s AS INTEGER) * 2 ELSE length(s) END FROM t1 ORDER BY k
-- typeof
SELECT typeof(1), typeof(1.5), typeof('a'), typeof(NULL), typeof(1 + 1.0), typeof(9223372036854775807 + 1), typeof(CAST('3.0' AS NUMERIC)), typeof(round(1))
ordered: SELECT k, typeof(a), typeof(r), typeof(s), typeof(a / 2), typeof(r * 0) FROM t1 ORDER BY k
-- more combinations
ordered: SELECT k, CASE WHEN a > 0 THEN CASE WHEN b > 500 THEN 'pb' ELSE 'ps' END WHEN a < 0 THEN 'n' END FROM t1 ORDER BY k
ordered: SELECT k, CASE r WHEN a THEN 'eq' WHEN -a THEN 'neg' ELSE r END FROM t1 ORDER BY k
ordered: SELECT k, CASE WHEN s IS NULL THEN NULL WHEN s > 'b' THEN upper(s) ELSE lower(s) END FROM t1 ORDER BY k
ordered: SELECT k, r FROM t1 ORDER BY CAST(r AS INTEGER) DESC, k LIMIT 15
ordered: SELECT k, a FROM t1 WHERE a IS NOT DISTINCT FROM NULL ORDER BY k
ordered: SELECT k, g FROM t1 WHERE g IS DISTINCT FROM 'red' ORDER BY k
ordered: SELECT k FROM t1 WHERE r IS 12.5 OR b IS 100 OR s IS 'apple' ORDER BY k
ordered: SELECT k, b GLOB '*7*', r GLOB '-*', a GLOB '[0-2]' FROM t1 ORDER BY k
ordered: SELECT k, quote(r), printf('%.3f', r), round(r, 3) = r FROM t1 ORDER BY k
ordered: SELECT k, hex(upper(s)), length(hex(s)) FROM t1 ORDER BY k
SELECT max(1, 2) + min(3, 4) * 2, max('a', 1) || min('b', 'c'), max(-0.5, -1) * 2
SELECT round(-0.0), round(0.0001, 3), round(5.555, 2), round(-5.555, 2), round(1e-10, 5), round(2.5e-1, 1)
SELECT printf('%.5f', 1.0/3), printf('%.10f', 2.0/3), printf('%.0f', 1e15), printf('%.1f', 999.95), printf('%f', -0.0), printf('%.2f', 1e-5)
SELECT instr(s, s), replace(s, s, 'x') FROM t1 WHERE k = 1
SELECT CAST(CAST('42abc' AS INTEGER) AS TEXT) || '!', CAST(CAST(7 AS REAL) AS TEXT), CAST(CAST('1.5' AS NUMERIC) * 2 AS INTEGER)
-- a CAST's affinity in IN, and SQLite's NOTNULL / NOT NULL postfix forms
ordered: SELECT k, CAST(a AS TEXT) IN (2, '-3'), CAST(k AS TEXT) IN (1), k IN ('1'), CAST(s AS INTEGER) IN ('10') FROM t1 ORDER BY k
ordered: SELECT k, a NOTNULL, s NOT NULL FROM t1 ORDER BY k
-- printf's %e and %g
SELECT printf('%e|%.2e|%E|%g|%g|%g|%g|%.3g|%#g|%g|%g|%10.2e|%-12g|', 1234.5, 0.000123456, 1e100, 100000, 1000000, 0.0001, 0.00001, 3.14159, 1.5, 0, 123456789, -5.5, 2.5)
SELECT printf('%.0e|%.1e|%g|%g|%G|%.10g|%+e|%010.3e|%.2g|%.1g', 9.5, 0.25, 1e-5, 123456.7, 1e-10, 1.0/3, 1.5, -2.5, 995, 0.05)
ordered: SELECT k, printf('%g', r), printf('%.3e', b), printf('%g', a * 1000000) FROM t1 ORDER BY k
-- digits exactly as SQLite's x87 printf makes them: ties after a division, 17+ digits, quote of reals
SELECT printf('%g', 123456.5), printf('%.20e', 0.1), printf('%.20f', 0.1), printf('%!.20f', 0.1), printf('%.17f', 1.2345678901234567), printf('%.3e', 2.0005), printf('%.0e', 2.5), printf('%.1f', 0.45)
SELECT quote(0.1 + 0.2), quote(1.0 / 3), quote(2.0 / 3), quote(1e-300 * 3), quote(123456789.123456789), quote(-0.1 - 0.2)
SELECT round(1.2345678901234567, 16), round(0.1234567890123456789, 19), round(123456789012.345, 3), round(1234567.891, 20), round(99999999999.995, 2)
ordered: SELECT k, quote(r / 3), printf('%.15g|%.20e', r / 7, r), round(r / 7, 12) FROM t1 ORDER BY k
SELECT printf('%!5s|%!.2s|%!-4s|', 'é', 'éèa', 'ü'), printf('%!.15g', 0.1), printf('%!.3f', 2.0005)
-- +x drops a column's affinity
ordered: SELECT k, +a = '2', a = '2', +s = 10, +CAST(a AS TEXT) = 2, +r > '1' FROM t1 ORDER BY k
ordered: SELECT k FROM t1 WHERE +a IN ('1', 2) ORDER BY k
