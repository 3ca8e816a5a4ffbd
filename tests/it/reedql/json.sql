-- JSON functions (src/query/exec/json.rs) against SQLite's json1 (3.40).
-- json(): minifies, keeps numbers and strings as written, refuses malformed text.
SELECT json(' [1.50, 1E2, -0, "\u0041", {"a" : null, "a":2}, [], {}] '), json('"x"'), json(' 5 '), json('null'), json('true'), json('false')
SELECT json('{"a":[1,{"b":[]}],"c":"\/\n"}'), json(123), json(1.5), json(-7), json(NULL)
SELECT json('abc')
SELECT json('')
SELECT json('[1,]')
SELECT json('{a:1}')
SELECT json('01')
SELECT json('[1] x')
-- json_valid: strict RFC 8259; NULL is 0 in SQLite 3.40.
SELECT json_valid('{"a":1}'), json_valid('[1,2,[3]]'), json_valid('1'), json_valid('-0.5e-3'), json_valid(' "x" '), json_valid('null'), json_valid('true'), json_valid('false')
SELECT json_valid(''), json_valid(' '), json_valid('{a:1}'), json_valid('[1,]'), json_valid('01'), json_valid('-'), json_valid('1.'), json_valid('.5'), json_valid('1e'), json_valid('1.e5'), json_valid('-01')
SELECT json_valid('"\x"'), json_valid('"a	b"'), json_valid('nul'), json_valid('nullx'), json_valid('[1'), json_valid('[1]]'), json_valid('{"a"}'), json_valid('{"a":1,}'), json_valid('{"a" 1}'), json_valid('{1:2}'), json_valid('[1 2]')
SELECT json_valid(NULL), json_valid(123), json_valid(1.5), json_valid('"\u00e9"'), json_valid('"\u00g9"'), json_valid('"\ud83d\ude00"'), json_valid('[true,false,null]'), json_valid('[True]'), json_valid('1 2'), json_valid('{}'), json_valid('[]')
SELECT json_valid('"é"'), json_valid('	[1]	'), json_valid('[ 1 , 2 ]')
-- json_array and json_object: SQL values quoted, JSON from JSON functions nested.
SELECT json_array(), json_array(1, 2.5, 'x', NULL, 1.0, 1e20, 0.1, -0.0, 9223372036854775807, -9223372036854775807 - 1)
SELECT json_array('a"b', 'c\d', 'e/f', 'tab	x', 'é', ''), json_array(json('[1]'), '[1]', json_array(2), json_object('k', 3), json_quote('q'))
SELECT json_object(), json_object('a', 1, 'b', json_object('c', 'd')), json_object('a', 1, 'a', 2), json_object('', NULL), json_object('x y', 2.5e-7)
SELECT json_object('a')
SELECT json_object(1, 2)
SELECT json_object(NULL, 2)
SELECT json_object('a', 1, 'b')
SELECT json_array(json_extract('{"a":"[1]"}', '$.a')), json_array(json_extract('{"a":[1]}', '$.a')), json_array(json_extract('{"a":{"b":1}}', '$.a')), json_array(json_extract('[1,2]', '$[0]', '$[1]'))
SELECT json_array('{"a":1}' ->> '$.a', '[3]' -> '$', '{"a":"x"}' -> '$.a', '{"a":"x"}' ->> '$.a')
-- json_quote.
SELECT json_quote(1), json_quote(1.0), json_quote(-2.5), json_quote('a"b'), json_quote(NULL), json_quote(json('[1]')), json_quote(json_quote('x')), json_quote('[1]'), json_quote(''), json_quote('é/\')
-- json_extract: paths, types, numbers, strings, many paths.
SELECT json_extract('{"a":[1,2,{"b":"x"}]}', '$.a[2].b'), json_extract('{"a":[1,2]}', '$.a'), json_extract('{"a":true}', '$.a'), json_extract('{"a":false}', '$.a'), json_extract('{"a":null}', '$.a'), json_extract('{"a":1.50}', '$.a')
SELECT json_extract('[9223372036854775807]', '$[0]'), json_extract('[9223372036854775808]', '$[0]'), json_extract('[-9223372036854775808]', '$[0]'), json_extract('[-9223372036854775809]', '$[0]'), json_extract('[1E2]', '$[0]'), json_extract('[-0]', '$[0]'), json_extract('[0.1e1]', '$[0]')
SELECT json_extract('[1,2,3]', '$[#-1]'), json_extract('[1,2,3]', '$[#-3]'), json_extract('[1,2,3]', '$[#-4]'), json_extract('[1,2,3]', '$[#]'), json_extract('[1,2,3]', '$[#-0]'), json_extract('[1,2,3]', '$[5]'), json_extract('[1,2,3]', '$[0]'), json_extract('[]', '$[0]')
SELECT json_extract('{"a":1,"b":2}', '$.a', '$.b'), json_extract('{"a":1}', '$.a', '$.z', NULL), json_extract('{"a b":1}', '$."a b"'), json_extract('{"a.b":1}', '$."a.b"'), json_extract('{"a":{"b":{"c":[10,[20,30]]}}}', '$.a.b.c[1][0]')
SELECT json_extract('{"a":1}', '$'), json_extract('[1]', '$.'), json_extract('[1]', '$.a['), json_extract('5', '$[0]'), json_extract('5', '$.a'), json_extract('{"a":1}', '$[0]'), json_extract('[{"a":1}]', '$.a'), json_extract('{"a":1}', NULL), json_extract(NULL, '$'), json_extract('{"a":1}')
SELECT json_extract('{"a":"\u00e9\n\"\/\t"}', '$.a'), json_extract('{"\u0061":1}', '$.a'), json_extract('{"a":1,"a":2}', '$.a'), json_extract('["b\u0000x"]', '$[0]'), json_extract('["\ud83d\ude00"]', '$[0]'), json_extract('[""]', '$[0]')
SELECT json_extract('[1]', 'x')
SELECT json_extract('[1]', '$[')
SELECT json_extract('{"a":1}', '$.')
SELECT json_extract('{"a":1}', '$."a')
SELECT json_extract('[1]', '$[#-1 ]')
SELECT json_extract('{"a":1}', '$.a', 'bad')
SELECT json_extract('oops', '$')
-- -> and ->>: JSON text versus SQL values; keys and indexes without '$'.
SELECT '{"a":"x"}' -> '$.a', '{"a":"x"}' ->> '$.a', '{"a":"x"}' -> 'a', '[5,6]' -> 1, '[5,6]' ->> 0, '[5,6]' ->> -1, '{"a":[1]}' -> '$.a', '{"a":[1]}' ->> '$.a'
SELECT '{"a":{"b":2}}' -> 'a.b', '[[1,2]]' -> '[0][1]', '{"a":1}' -> '$', '{"a":null}' -> 'a', '{"a":null}' ->> 'a', '{"a":1}' -> 'z', NULL -> '$', '{"a":1}' -> NULL, '{"a":true}' ->> 'a'
SELECT '{"a":{"b":[7,8]}}' -> 'a' -> 'b' ->> 1, '[1,2]' ->> 1 + 1, '{"k":"v"}' ->> 'k' || 'w', ('{"a":"p"}' ->> 'a') || 'q'
SELECT 'nope' -> '$'
SELECT '[1]' -> 'a['
-- json_type and json_array_length.
SELECT json_type('{"a":1}'), json_type('[1]'), json_type('1'), json_type('1.0'), json_type('-1e5'), json_type('"s"'), json_type('null'), json_type('true'), json_type('false'), json_type(NULL)
SELECT json_type('{"a":[1,2.5,"x",null]}', '$.a'), json_type('{"a":[1,2.5,"x",null]}', '$.a[1]'), json_type('{"a":[1,2.5,"x",null]}', '$.a[3]'), json_type('{"a":[1]}', '$.a[9]'), json_type('{"a":1}', NULL), json_type('[9223372036854775808]', '$[0]')
SELECT json_type('x')
SELECT json_array_length('[1,2]'), json_array_length('[]'), json_array_length('{}'), json_array_length('5'), json_array_length('[1,[2,3],{"a":[4]}]'), json_array_length('[1,[2,3]]', '$[1]'), json_array_length('[1]', '$[9]'), json_array_length(NULL), json_array_length('[1]', NULL)
SELECT json_array_length('[1')
-- Over rows: objects and arrays from t1's columns, extraction back, grouping, filters.
SELECT k, json_object('k', k, 's', s, 'r', r, 'a', a) FROM t1 WHERE k <= 40
SELECT k, json_array(k, a, b, r, s, g) FROM t1
SELECT k, json_object('k', k, 's', s) ->> 's' = s, json_extract(json_array(a, b), '$[1]') = b, json_object('r', r) -> 'r', json_object('r', r) ->> 'r' = r FROM t1
SELECT k, json_quote(s), json_valid(s), json_type(json_quote(r)), json_array_length(json_array(a, b, s)) FROM t1 WHERE k <= 50
SELECT g, json_extract(json_object('g', g, 'n', COUNT(*)), '$.n'), json_array(g, SUM(b)) FROM t1 GROUP BY g
SELECT json_extract(json_object('g', g), '$.g') AS gg, COUNT(*) FROM t1 GROUP BY gg
ordered: SELECT k, json_object('k', k, 'b', b) AS j FROM t1 WHERE b IS NOT NULL ORDER BY json_object('k', k, 'b', b) ->> 'b' DESC, k LIMIT 12
ordered: SELECT k FROM t1 WHERE json_array(a, b) ->> 0 = 3 ORDER BY k
SELECT t1.k, json_object('t1', json_object('k', t1.k, 's', t1.s), 't2', json_array(t2.k, t2.c, t2.s)) FROM t1 JOIN t2 ON t1.k = t2.t1_k
SELECT DISTINCT json_type(json_array(a) -> '$[0]') FROM t1
SELECT k, json_extract('{"k":' || k || ',"b":' || coalesce(b, 'null') || '}', '$.b') FROM t1 WHERE k <= 30
SELECT k, json_valid('[' || s || ']'), json_valid(s) FROM t1 WHERE k <= 60
SELECT COUNT(*), json_array(MIN(k), MAX(k)) FROM t1 WHERE k < 0
SELECT json_object('k', k) FROM t1 WHERE 0
-- Precedence of -> and ->> (as ||) and paths given as numbers.
SELECT json_object('a', 1) -> '$.a' + 1, json_object('a', 2) ->> 'a' * 3
SELECT '[1,2]' -> 1.0
SELECT 'a' || '{"x":1}' -> 'x'
SELECT json_extract('{"a":1.0}', '$.a'), json_extract('{"a":-1.5e-3}', '$.a'), json_extract('{"a":"1"}', '$.a') + 1, json_type('{"a":"1"}', '$.a'), json_extract('[[]]', '$[0]'), json_extract('[{}]', '$[0]')
SELECT json_object('k', json_extract('{"a":"x"}', '$.a')), json_object('k', json_extract('{"a":{"b":null}}', '$.a')), json_object('k', '{"a":1}' -> '$.a'), json_object('k', '{"a":"s"}' ->> '$.a'), json_array(json('  [1, 2]  '))
