-- Everyday shapes the generator composes too, kept as fixed cases.
SELECT k, s FROM t1 WHERE k BETWEEN 3 AND 9
ordered: SELECT k, r FROM t1 ORDER BY r DESC, k LIMIT 5
SELECT s, COUNT(*) FROM t1 GROUP BY s
