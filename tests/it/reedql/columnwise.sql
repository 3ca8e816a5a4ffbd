-- WHERE tested column by column (exec/column_filter.rs) and dimension
-- joins (exec/dim_join.rs): each shape that takes the column-wise path,
-- with NULLs, mixed affinities and the shapes that must fall back.
SELECT k, a FROM t1 WHERE a >= 2
SELECT k FROM t1 WHERE 3 > a AND b < 500.5
SELECT k FROM t1 WHERE r > 0.5 AND r <= 1e300
SELECT k FROM t1 WHERE a = '2'
SELECT k FROM t1 WHERE a <> 0 AND g IN ('red', 'blue')
SELECT k FROM t1 WHERE a > 'x'
SELECT k FROM t1 WHERE a IS 2 OR a IS NULL
SELECT k FROM t1 WHERE lower(g) = 'red' AND s LIKE '%a%'
SELECT k FROM t1 WHERE coalesce(g, 'none') = 'none'
SELECT k FROM t1 WHERE g = 'green' AND a + b > 500
SELECT k FROM t1 WHERE b > 9007199254740993
SELECT k FROM t1 WHERE a * 1000000000000 > 2
SELECT g, COUNT(*), AVG(b) FROM t1 WHERE a < 0 AND s IS NOT NULL GROUP BY g
SELECT g, COUNT(*), AVG(r), COUNT(r) FROM t1 WHERE b BETWEEN 100 AND 700 GROUP BY g
SELECT g, COUNT(*) FROM t1 WHERE a > 0 AND b % 2 = 0 GROUP BY g
SELECT k FROM t1 u WHERE a >= 0 AND EXISTS (SELECT 1 FROM t1 v WHERE v.g = u.g AND v.b > 990)
-- Dimension joins: t2.t1_k to the key of t1, a grouped CTE by its key.
SELECT t2.c, COUNT(*) FROM t2 JOIN t1 ON t2.t1_k = t1.k GROUP BY t2.c
SELECT t2.s, COUNT(*), AVG(t2.c) FROM t2 JOIN t1 ON t2.t1_k = t1.k WHERE t1.a > 0 GROUP BY t2.s
SELECT t2.c, COUNT(*) FROM t2 JOIN t1 ON t1.k = t2.t1_k WHERE t2.c > t1.a AND t1.g = 'red' GROUP BY t2.c
SELECT t2.c, COUNT(*), AVG(t1.b) FROM t2 JOIN t1 ON t2.t1_k = t1.k WHERE t2.c < t1.b / 100 GROUP BY t2.c
WITH x AS (SELECT g, AVG(b) AS ab FROM t1 GROUP BY g) SELECT t1.a, COUNT(*) FROM t1 JOIN x ON t1.g = x.g WHERE t1.b > x.ab GROUP BY t1.a
WITH x AS (SELECT g, AVG(b) AS ab FROM t1 GROUP BY g) SELECT t1.g, COUNT(*) AS n FROM t1 JOIN x ON t1.g = x.g WHERE t1.b > x.ab AND t1.a <> 1 GROUP BY t1.g
WITH x AS (SELECT a, MAX(r) AS m FROM t1 GROUP BY a) SELECT t1.g, COUNT(*) FROM t1 JOIN x ON t1.a = x.a WHERE t1.r >= x.m GROUP BY t1.g
WITH x AS (SELECT g, MIN(s) AS m FROM t1 GROUP BY g) SELECT t1.a, COUNT(*) FROM t1 JOIN x ON t1.g = x.g WHERE t1.b > x.m GROUP BY t1.a
WITH x AS (SELECT g, 'n' || COUNT(*) AS m FROM t1 GROUP BY g) SELECT t1.a, COUNT(*) FROM t1 JOIN x ON t1.g = x.g WHERE x.m <> 'n3' GROUP BY t1.a
-- Not dimensions (a value with several rows), and a LEFT JOIN: the
-- general join.
SELECT t1.g, COUNT(*) FROM t1 JOIN t2 ON t1.k = t2.t1_k GROUP BY t1.g
SELECT t2.c, COUNT(*) FROM t2 LEFT JOIN t1 ON t2.t1_k = t1.k GROUP BY t2.c
SELECT t2.s, COUNT(*) FROM t2 JOIN t1 ON t2.t1_k = t1.k JOIN t2 AS o ON o.c = t2.c GROUP BY t2.s
-- GROUP BY a column of the joined table (exec/join_group.rs): one match
-- per row, several (t2 has many rows per t1_k), none, NULL keys, HAVING
-- and ORDER BY; and the shapes that take the general path (any WHERE, an
-- aggregate of the joined table's columns).
SELECT t1.g, COUNT(*), AVG(t2.c), COUNT(t2.c) FROM t2 JOIN t1 ON t2.t1_k = t1.k GROUP BY t1.g
SELECT t2.s, COUNT(*), AVG(t1.b) FROM t1 JOIN t2 ON t1.k = t2.t1_k GROUP BY t2.s
SELECT t1.a, COUNT(*) FROM t2 JOIN t1 ON t2.t1_k = t1.k WHERE t2.c > 3 GROUP BY t1.a HAVING COUNT(*) > 1
ordered: SELECT t1.g, COUNT(*) AS n FROM t2 JOIN t1 ON t1.k = t2.t1_k GROUP BY t1.g ORDER BY n DESC, t1.g
SELECT t1.g, COUNT(*) FROM t2 JOIN t1 ON t2.t1_k = t1.k WHERE t1.a > 0 GROUP BY t1.g
SELECT t1.g, SUM(t1.b), MIN(t2.s) FROM t2 JOIN t1 ON t2.t1_k = t1.k GROUP BY t1.g
SELECT o.s, COUNT(*), AVG(t2.k) FROM t2 JOIN t2 AS o ON o.c = t2.c GROUP BY o.s
-- A subquery's column may hold 1 and 1.0 (equal, one dictionary code):
-- typeof and || tell them apart, so no per-code evaluation there.
SELECT x FROM (SELECT 1 AS x UNION ALL SELECT 1.0 UNION ALL SELECT 2) WHERE typeof(x) = 'real'
SELECT x FROM (SELECT 1 AS x UNION ALL SELECT 1.0 UNION ALL SELECT 2) WHERE x || '' = '1.0'
SELECT y.x, COUNT(*) FROM (SELECT a AS x FROM t1 UNION ALL SELECT a + 0.0 FROM t1) y WHERE typeof(y.x) = 'integer' GROUP BY y.x
