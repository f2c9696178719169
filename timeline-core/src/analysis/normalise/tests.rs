//! The normaliser's tests: one rule at a time, then properties.

use super::{KEYWORDS, KEYWORDS_BEFORE_OPERAND, Lexer, hides_values, is_keyword, normalise};
use proptest::prelude::*;

/// `(input, output)`: each normalises to its output, and the output to
/// itself.
fn assert_normalises(cases: &[(&str, &str)]) {
    for (input, expected) in cases {
        assert_eq!(normalise(input), *expected, "normalising {input:?}");
        assert_eq!(
            normalise(expected),
            *expected,
            "normalising {expected:?} again"
        );
    }
}

/// Statements of each group compare equal; statements of different
/// groups do not.
fn assert_groups(groups: &[&[&str]]) {
    for (n, group) in groups.iter().enumerate() {
        let first = normalise(group[0]);
        for statement in &group[1..] {
            assert_eq!(
                normalise(statement),
                first,
                "{statement:?} and {:?}",
                group[0]
            );
        }
        for other in &groups[n + 1..] {
            assert_ne!(
                normalise(other[0]),
                first,
                "{:?} and {:?}",
                other[0],
                group[0]
            );
        }
    }
}

#[test]
fn each_rule_on_examples() {
    assert_normalises(&[
        // Numbers, with a sign only where it cannot be an operator.
        (
            "SELECT * FROM bug WHERE id = 1",
            "SELECT * FROM bug WHERE id = ?",
        ),
        (
            "SELECT 1.5, -2, +3e10, .5, 6.02E-23, 1e+5, 7.",
            "SELECT ?, ?, ?, ?, ?, ?, ?",
        ),
        (
            "x = -1 AND y = a -1 AND z = (-.5)",
            "x = ? AND y = a - ? AND z = (?)",
        ),
        (
            "SELECT -1, a-1, 2-1, f(x)-1",
            "SELECT ?, a - ?, ? - ?, f(x) - ?",
        ),
        (
            "WHERE a = - 1 OR b = THEN -1",
            "WHERE a = - ? OR b = THEN ?",
        ),
        // Hex numbers and blobs.
        (
            "WHERE a = 0x1F AND b = X'DEADBEEF'",
            "WHERE a = ? AND b = ?",
        ),
        ("WHERE c = x'00' AND d = B'0101'", "WHERE c = ? AND d = ?"),
        // Booleans, whole words only; NULL as a value, not in a predicate.
        (
            "WHERE a = TRUE OR b = false OR truest = 1",
            "WHERE a = ? OR b = ? OR truest = ?",
        ),
        (
            "WHERE x IS NULL OR y = null OR z is not null",
            "WHERE x IS NULL OR y = ? OR z IS NOT NULL",
        ),
        (
            "CREATE TABLE t (a int NOT NULL DEFAULT NULL)",
            "CREATE TABLE t(a int NOT NULL DEFAULT ?)",
        ),
        // Strings: doubled quotes, backslashes, prefixes, unterminated.
        ("WHERE title = 'it''s'", "WHERE title = ?"),
        (
            r"WHERE title = 'it\'s' AND x = 1",
            "WHERE title = ? AND x = ?",
        ),
        (r"WHERE a = N'ünï' OR a = E'a\'b'", "WHERE a = ? OR a = ?"),
        (
            r"WHERE a = U&'d\0061t' OR a = u&'x'",
            "WHERE a = ? OR a = ?",
        ),
        ("WHERE title = 'unterminated AND x = 1", "WHERE title = ?"),
        // PostgreSQL's dollar quoting.
        ("DO $$BEGIN PERFORM 1; END$$", "DO ?"),
        (
            "SELECT $f$it's$f$, $1, a$b FROM t",
            "SELECT ?, $1, a$b FROM t",
        ),
        ("SELECT $ 1, $x", "SELECT $ ?, $ x"),
        // Quoted names: the quotes go where a name needs none.
        (
            r#"SELECT "bug"."id", `Title` FROM "bug""#,
            "SELECT bug.id, title FROM bug",
        ),
        (
            r#"SELECT "order", "a b", "x""y", `it's`, "1a" FROM t"#,
            r#"SELECT "order", "a b", "x""y", `it's`, "1a" FROM t"#,
        ),
        // IN lists.
        ("WHERE id IN (1, 2, 3)", "WHERE id IN (...)"),
        (
            "WHERE id in('a',\n 'b' , NULL, ?, $2, :n, @v, -7)",
            "WHERE id IN (...)",
        ),
        (
            "WHERE id NOT IN (?) AND x = 1",
            "WHERE id NOT IN (...) AND x = ?",
        ),
        ("WHERE id IN (1, x)", "WHERE id IN (?, x)"),
        (
            "WHERE id IN (SELECT id FROM t WHERE x = 1)",
            "WHERE id IN (SELECT id FROM t WHERE x = ?)",
        ),
        ("WHERE (a, b) IN ((1, 2), (3, 4))", "WHERE (a, b) IN (...)"),
        (
            "WHERE (a, b) IN ((1, 2), (3, b))",
            "WHERE (a, b) IN ((?, ?), (?, b))",
        ),
        ("WHERE id IN ()", "WHERE id IN ()"),
        // VALUES tuples.
        (
            "INSERT INTO t (a, b) VALUES (1, 'a'), (2, 'b'), (3, 'c')",
            "INSERT INTO t(a, b) VALUES (...)",
        ),
        ("INSERT INTO t VALUES(1);", "INSERT INTO t VALUES (...)"),
        (
            "INSERT INTO t VALUES (1, now())",
            "INSERT INTO t VALUES (?, now())",
        ),
        (
            "INSERT INTO t VALUES (1), (2) RETURNING id",
            "INSERT INTO t VALUES (...) RETURNING id",
        ),
        (
            "INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = VALUES(a)",
            "INSERT INTO t VALUES (...) ON duplicate key UPDATE a = VALUES (a)",
        ),
        // Names with digits, and placeholders already there.
        (
            "SELECT col1, t2.col3 FROM table1 t2 JOIN t_3 ON t2.x = t_3.x",
            "SELECT col1, t2.col3 FROM table1 t2 JOIN t_3 ON t2.x = t_3.x",
        ),
        (
            "WHERE a = $1 AND b = ?2 AND c = :name AND d = @v1 AND e = ?",
            "WHERE a = $1 AND b = ?2 AND c = :name AND d = @v1 AND e = ?",
        ),
        (
            "SELECT x::int, `col 1`, `it's` FROM t",
            "SELECT x::int, `col 1`, `it's` FROM t",
        ),
        ("SELECT a[1:2], 1abc, 12_000", "SELECT a[? : ?], ?, ?"),
        // Operators, kept whole.
        (
            "WHERE a<=1 AND b<>2 AND c != 3 AND d||e",
            "WHERE a <= ? AND b <> ? AND c != ? AND d || e",
        ),
        (
            "SELECT doc->>'name', doc -> 'a', data #>> '{a}' FROM t",
            "SELECT doc ->> ?, doc -> ?, data #>> ? FROM t",
        ),
        ("SELECT a #x, b # c", "SELECT a #x, b"),
        ("SELECT a : :: b", "SELECT a : ::b"),
        // Comments, whitespace and case; ASC and a final `;` go.
        (
            "SELECT a -- the answer: 42\nFROM t /* 7 */ WHERE b = 1/**/",
            "SELECT a FROM t WHERE b = ?",
        ),
        ("# a comment\nSELECT 1 # another", "SELECT ?"),
        ("SELECT a/*unterminated 1", "SELECT a"),
        ("  select\n\t*\r\n  From   T  ", "SELECT * FROM t"),
        ("a/**/b-/**/-1", "a b - ?"),
        (
            "select * from Bug where id=42 and title = 'it''s';",
            "SELECT * FROM bug WHERE id = ? AND title = ?",
        ),
        (
            "SELECT c FROM t ORDER BY a ASC, b DESC;;",
            "SELECT c FROM t ORDER BY a, b DESC",
        ),
        // Unicode, and strings that are hardly SQL.
        (
            "SELECT 'é' || 'ü', ünï1 FROM tää WHERE n = 3\u{3000}",
            "SELECT ? || ?, ünï1 FROM tää WHERE n = ?",
        ),
        ("LIMIT 10 OFFSET 20", "LIMIT ? OFFSET ?"),
        ("x=1", "x = ?"),
        ("f(1,2)", "f(?, ?)"),
        ("", ""),
        (" \n ", ""),
        ("'", "?"),
        ("\0", "\0"),
        (";", ""),
        // Already normalised.
        ("WHERE id IN (...) AND x = ?", "WHERE id IN (...) AND x = ?"),
        ("INSERT INTO t VALUES (...)", "INSERT INTO t VALUES (...)"),
    ]);
}

#[test]
fn statements_of_a_loop_compare_equal() {
    assert_groups(&[
        &[
            "SELECT * FROM bug WHERE id = 1",
            "SELECT * FROM bug WHERE id = 2",
            "select * from BUG where ID=3;",
            r#"SELECT * FROM "bug" WHERE `id` = 4"#,
        ],
        &[
            "SELECT * FROM t WHERE id IN (1, 2, 3)",
            "SELECT * FROM t WHERE id IN (4)",
            "SELECT * FROM t WHERE id IN (?, ?, ?)",
            "SELECT * FROM t WHERE id IN (?)",
        ],
        &[
            "INSERT INTO t VALUES (1, 'a')",
            "INSERT INTO t VALUES (1, 'a'), (2, NULL)",
        ],
        &[
            "UPDATE bug SET title = 'x' WHERE id = 7",
            "UPDATE bug SET title = 'it''s y' WHERE id = 8",
        ],
        &[
            "SELECT *\n  FROM t WHERE a = -1 -- first",
            "SELECT * FROM t WHERE a = 2",
        ],
        &["SELECT * FROM t1"],
        &["SELECT * FROM t2"],
        &["SELECT * FROM t WHERE b = 1"],
        &["SELECT * FROM t WHERE a IN (b)"],
        &["SELECT * FROM t WHERE a IS NULL"],
    ]);
}

#[test]
fn double_quoted_text_is_a_name_so_orm_statements_on_different_tables_differ() {
    // diesel and sea-orm on PostgreSQL quote every name.
    assert_ne!(
        normalise(r#"SELECT "users"."id" FROM "users" WHERE "users"."id" = $1"#),
        normalise(r#"SELECT "posts"."id" FROM "posts" WHERE "posts"."id" = $1"#),
    );
    assert_eq!(
        normalise(r#"SELECT "users"."id" FROM "users" WHERE "users"."id" = $1"#),
        "SELECT users.id FROM users WHERE users.id = $1",
    );
}

/// pt-fingerprint's own test cases (percona-toolkit,
/// `t/lib/QueryRewriter.t`, the `fingerprint()` tests), with what
/// pt-fingerprint returns in the comment. The output differs in case and
/// spacing throughout (pt-fingerprint lowercases everything and keeps
/// the spacing around operators); where it differs otherwise, the
/// comment says why.
#[test]
fn pt_fingerprint_test_cases() {
    assert_normalises(&[
        // 'update groups_search set charter = ?, show_in_list = ? where group_id=?'
        (
            r"UPDATE groups_search SET  charter = '   -------3\'\' XXXXXXXXX.\n    \n    -----------------------------------------------------', show_in_list = 'Y' WHERE group_id='aaaaaaaa'",
            "UPDATE groups_search SET charter = ?, show_in_list = ? WHERE group_id = ?",
        ),
        // 'select foo'
        ("select \n--bar\n foo", "SELECT foo"),
        // 'select foo foo'
        ("select foo--bar\nfoo", "SELECT foo foo"),
        // 'select foo '
        ("select foo -- bar\n", "SELECT foo"),
        // 'select ?, ?, ? from foo'
        (
            "select null, 5.001, 5001. from foo",
            "SELECT ?, ?, ? FROM foo",
        ),
        // 'select ?, ?, ?, ? from foo': here "hello" is a name (the
        // double-quote choice in the module docs).
        (
            "select 'hello', '\nhello\n', \"hello\", '\\'' from foo",
            "SELECT ?, ?, hello, ? FROM foo",
        ),
        // 'select ?'
        ("select 'hello'\n", "SELECT ?"),
        // 'select ? from foo'
        ("select '\\\\' from foo", "SELECT ? FROM foo"),
        // 'select foo'
        ("select   foo", "SELECT foo"),
        // 'select * from foo where a = ?'
        (
            "SELECT * from foo where a = 5",
            "SELECT * FROM foo WHERE a = ?",
        ),
        // 'select ?, ?, ? from foo where a = ? or b=? or c=?'
        (
            "select 0e0, +6e-30, -6.00 from foo where a = 5.5 or b=0.5 or c=.5",
            "SELECT ?, ?, ? FROM foo WHERE a = ? OR b = ? OR c = ?",
        ),
        // 'select ?, ?, ?, ? from foo'
        (
            "select 0x0, x'123', 0b1010, b'10101' from foo",
            "SELECT ?, ?, ?, ? FROM foo",
        ),
        // 'select * from foo where a = ?'
        (
            " select  * from\nfoo where a = 5",
            "SELECT * FROM foo WHERE a = ?",
        ),
        // 'select * from foo where a in(?+) and b in(?+)'
        (
            "select * from foo where a in (5) and b in (5, 8,9 ,9 , 10)",
            "SELECT * FROM foo WHERE a IN (...) AND b IN (...)",
        ),
        // 'select foo_? from foo_?_?': digits in names are kept, as
        // PostgreSQL and MySQL keep them.
        ("select foo_1 from foo_2_3", "SELECT foo_1 FROM foo_2_3"),
        // 'insert into abtemp.coxed select foo.bar from foo'
        (
            "insert into abtemp.coxed select foo.bar from foo",
            "INSERT INTO abtemp.coxed SELECT foo.bar FROM foo",
        ),
        // 'insert into foo(a, b, c) values(?+)'
        (
            "insert into foo(a, b, c) values(2, 4, 5)",
            "INSERT INTO foo(a, b, c) VALUES (...)",
        ),
        // 'insert into foo(a, b, c) values(?+)'
        (
            "insert into foo(a, b, c) values(2, 4, 5) , (2,4,5)",
            "INSERT INTO foo(a, b, c) VALUES (...)",
        ),
        // 'select * from foo limit ?'
        ("select * from foo limit 5", "SELECT * FROM foo LIMIT ?"),
        // 'select * from foo limit ?': the clauses are kept apart, as
        // PostgreSQL and MySQL keep them.
        (
            "select * from foo limit 5, 10",
            "SELECT * FROM foo LIMIT ?, ?",
        ),
        (
            "select * from foo limit 5 offset 10",
            "SELECT * FROM foo LIMIT ? OFFSET ?",
        ),
        // 'select c from t where i=? order by c'
        (
            "select c from t where i=1 order by c asc",
            "SELECT c FROM t WHERE i = ? ORDER BY c",
        ),
        // 'select * from t where i=? order by a, b, d desc, e'
        (
            "select * from t where i=1 order by a, b ASC, d DESC, e asc",
            "SELECT * FROM t WHERE i = ? ORDER BY a, b, d DESC, e",
        ),
        (
            "select * from t where i=1      order            by \n      a,  b          ASC, d    DESC,    \n                             \n                             e asc",
            "SELECT * FROM t WHERE i = ? ORDER BY a, b, d DESC, e",
        ),
        // 'load data infile ? into db.tbl'
        (
            "LOAD DATA INFILE '/tmp/foo.txt' INTO db.tbl",
            "load data infile ? INTO db.tbl",
        ),
        // 'select sql_small_result sql_cache distinct centro_atividade from est_dia where unidade_id=? and item_id=? and item_id_red=?'
        (
            "/* -- S++ SU ABORTABLE -- spd_user: rspadim */SELECT SQL_SMALL_RESULT SQL_CACHE DISTINCT centro_atividade FROM est_dia WHERE unidade_id=1001 AND item_id=67 AND item_id_red=573",
            "SELECT sql_small_result sql_cache DISTINCT centro_atividade FROM est_dia WHERE unidade_id = ? AND item_id = ? AND item_id_red = ?",
        ),
        // 'select * from tbl where id=? and flag=? and trueflag=?'
        (
            "SELECT * FROM tbl WHERE id=1 AND flag=true AND trueflag=FALSE",
            "SELECT * FROM tbl WHERE id = ? AND flag = ? AND trueflag = ?",
        ),
    ]);
}

/// MySQL's own digest test (mysql-server,
/// `mysql-test/suite/perfschema/r/statement_digest.result`): the
/// statements it counts under one `DIGEST_TEXT` compare equal here, and
/// statements under different ones differ, except where the comment
/// says.
#[test]
fn mysql_statement_digest_test_cases() {
    assert_groups(&[
        // SELECT ? FROM `t1` (2)
        &["SELECT 1 FROM t1", "SELECT 1 FROM `t1`"],
        // SELECT ? FROM `t2`
        &["SELECT 1 FROM t2"],
        // INSERT INTO `t1` VALUES (?) (2), and INSERT INTO `t1` VALUES
        // (?) /* , ... */ (2): one here, as in pt-fingerprint.
        &[
            "INSERT INTO t1 VALUES (1)",
            "INSERT INTO t1 VALUES (NULL)",
            "INSERT INTO t1 VALUES (1), (2), (3)",
            "INSERT INTO t1 VALUES (1), (2), (3), (4)",
        ],
        // INSERT INTO `t3` VALUES (...) (4)
        &[
            "INSERT INTO t3 VALUES (1, 2)",
            "INSERT INTO t3 VALUES (NULL,NULL)",
            "INSERT INTO t3 VALUES (1,NULL)",
            "INSERT INTO t3 VALUES (NULL,1)",
        ],
        // INSERT INTO `t6` VALUES (...) (5)
        &[
            "INSERT INTO t6 VALUES (NULL, NULL, NULL, NULL)",
            "INSERT INTO t6 VALUES (1, NULL, NULL, NULL)",
            "INSERT INTO t6 VALUES (NULL, 2, NULL, NULL)",
            "INSERT INTO t6 VALUES (1, 2, 3, NULL)",
            "INSERT INTO t6 VALUES (1, 2, NULL, 4)",
        ],
        // SELECT * FROM `t1` WHERE `a` IN (...) (2)
        &[
            "SELECT * FROM t1 WHERE a IN (1)",
            "SELECT * FROM t1 WHERE a IN (1, 2, 3)",
        ],
        // SELECT ? + ? (3)
        &[
            "SELECT                                          1           +        1",
            "SELECT 1 /* This is an inline comment */ + 1",
            "SELECT 1+\n/*\nthis is a\nmultiple-line comment\n*/\n1",
        ],
        // SELECT ?
        &["SELECT 1"],
        // SELECT `func` (...) (2)
        &["select func(3,4)", "select func(13,42)"],
        // CALL `p1` ( ) (2)
        &["CALL p1()", "CALL p1 ( )"],
    ]);
    // Where MySQL groups and this module does not. `SELECT ?, ... FROM
    // t1`: MySQL folds any run of values; PostgreSQL and pt-fingerprint
    // keep them.
    assert_ne!(
        normalise("SELECT 1,2 FROM t1"),
        normalise("SELECT 1, 2, 3, 4 FROM t1")
    );
    // `INSERT INTO t12 VALUES (?)`: MySQL reads double quotes as a
    // string; here they quote a name (see the module docs).
    assert_ne!(
        normalise(r#"INSERT INTO t12 VALUES ("abc")"#),
        normalise(r#"INSERT INTO t12 VALUES ("def")"#)
    );
}

/// PostgreSQL's own tests of pg_stat_statements (postgres,
/// `contrib/pg_stat_statements/expected/select.out`) and pganalyze's
/// libpg_query (`test/normalize_tests.c`): statements counted under one
/// query text compare equal here, others differ, except where the
/// comment says.
#[test]
fn pg_stat_statements_test_cases() {
    assert_groups(&[
        // SELECT $1 AS "int" LIMIT $2 (2)
        &[
            r#"SELECT 1 AS "int" LIMIT 1"#,
            r#"SELECT 1 AS "int" LIMIT 2"#,
        ],
        // SELECT $1 AS "int" OFFSET $2 (2)
        &[
            r#"SELECT 1 AS "int" OFFSET 1"#,
            r#"SELECT 1 AS "int" OFFSET 2"#,
        ],
        // SELECT DISTINCT $1 AS "int" (2)
        &[
            r#"SELECT DISTINCT 1 AS "int""#,
            r#"SELECT DISTINCT 2 AS "int""#,
        ],
        // SELECT $1 AS "int" ORDER BY 1 (2)
        &[
            r#"SELECT 1 AS "int" ORDER BY 1"#,
            r#"SELECT 2 AS "int" ORDER BY 1"#,
        ],
        // SELECT $1 -- but this one will appear AS "text" (4 with the
        // transactions' copies)
        &[
            "/* this comment should not appear in the output */\nSELECT 'hello'\n  -- but this one will appear\n  AS \"text\"",
            r#"SELECT 'world' AS "text""#,
        ],
        // SELECT $1 + $2 (2)
        &["SELECT 3 + 3", "SELECT 1 + 4"],
        // SELECT WHERE ($1, $2) IN (($3, $4), ($5, $6)) (2)
        &[
            "SELECT WHERE (1, 2) IN ((1, 2), (2, 3))",
            "SELECT WHERE (3, 4) IN ((5, 6), (8, 7))",
        ],
        // Locking clauses are told apart.
        &["SELECT * FROM pgss_a JOIN pgss_b ON pgss_b.a_id = pgss_a.id FOR UPDATE"],
        &["SELECT * FROM pgss_a JOIN pgss_b ON pgss_b.a_id = pgss_a.id FOR SHARE"],
        &["SELECT * FROM pgss_a JOIN pgss_b ON pgss_b.a_id = pgss_a.id FOR UPDATE OF pgss_a"],
        // libpg_query: NOTIFY channel, $1
        &[
            "NOTIFY channel, 'a'",
            "NOTIFY channel, 'b'",
            "NOTIFY channel, 'some text to normalize'",
        ],
        // libpg_query: DO $1 (a dollar-quoted body)
        &[
            "DO $$DECLARE r record; BEGIN FOR r IN SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'VIEW' AND table_schema = 'public' LOOP EXECUTE 'GRANT ALL ON ' || quote_ident(r.table_schema) || '.' || quote_ident(r.table_name) || ' TO webuser'; END LOOP; END$$",
            "DO $$BEGIN END$$",
        ],
        // libpg_query: CREATE ROLE r PASSWORD $1
        &[
            r"CREATE ROLE r PASSWORD U&'d\0061t\+000061'",
            "CREATE ROLE r PASSWORD 'xyz'",
        ],
        // libpg_query: DO language $1 $2
        &[
            "DO language E'plpgsql' 'BEGIN PERFORM 1; END'",
            "DO language 'sql' 'x'",
        ],
    ]);
    // Where PostgreSQL keeps apart what this module folds: the rows of
    // VALUES (`VALUES ($1), ($2)`), and ordinal positions (`GROUP BY 1`).
    assert_eq!(
        normalise("WITH t(f) AS (VALUES (1.0), (2.0)) SELECT f FROM t ORDER BY f"),
        normalise("WITH t(f) AS (VALUES (1.0)) SELECT f FROM t ORDER BY f")
    );
    assert_eq!(
        normalise("SELECT a, SUM(b) FROM tbl WHERE c = 'foo' GROUP BY 1, 'bar' ORDER BY 1, 'cafe'"),
        "SELECT a, sum(b) FROM tbl WHERE c = ? GROUP BY ?, ? ORDER BY ?, ?"
    );
    // PostgreSQL tells `$1` from a constant; this module keeps `$1`.
    assert_ne!(normalise("SELECT $1"), normalise("SELECT 1"));
}

#[test]
fn keyword_tables_are_sorted_and_cover_the_special_words() {
    assert!(KEYWORDS.windows(2).all(|pair| pair[0] < pair[1]));
    for keyword in KEYWORDS {
        assert!(is_keyword(keyword) && is_keyword(&keyword.to_lowercase()));
        for near in [format!("{keyword}X"), keyword[1..].to_owned()] {
            assert_eq!(
                is_keyword(&near),
                KEYWORDS.contains(&near.as_str()),
                "{near}"
            );
        }
    }
    assert!(!is_keyword("") && !is_keyword("A") && !is_keyword("SELECTSELECTSELECTS"));
    assert!(KEYWORDS.iter().all(|k| k.len() <= 16));
    assert!(
        KEYWORDS
            .iter()
            .any(|k| k.len() == super::keywords::LONGEST_KEYWORD)
    );
    let special = ["TRUE", "FALSE", "NULL", "ASC", "IS", "NOT", "IN", "VALUES"];
    for word in KEYWORDS_BEFORE_OPERAND.iter().chain(&special) {
        assert!(KEYWORDS.contains(word), "{word} is not in KEYWORDS");
    }
}

#[test]
fn hidden_values_are_placeholders_without_binds() {
    assert!(hides_values("SELECT * FROM t WHERE id = $1"));
    assert!(hides_values("SELECT * FROM t WHERE id = ?"));
    assert!(!hides_values("SELECT * FROM t WHERE id = 1"));
    assert!(!hides_values("SELECT * FROM t WHERE id = '$1'"));
    assert!(!hides_values(
        r#"SELECT "t"."id" FROM "t" WHERE "t"."id" = $1 -- binds: [7]"#
    ));
}

/// The tokens tile the input, none empty, so the lexer reads each byte
/// once and `normalise` turns its loop at most once per byte.
fn assert_tokens_tile(input: &str) -> usize {
    let mut tokens = 0;
    let mut end = 0;
    for token in Lexer::new(input) {
        assert!(!token.text.is_empty(), "an empty token at {end}");
        assert_eq!(input.get(end..end + token.text.len()), Some(token.text));
        end += token.text.len();
        tokens += 1;
    }
    assert_eq!(end, input.len(), "tokens stop short of the end");
    tokens
}

#[test]
fn adversarial_inputs_take_linear_work_and_stay_bounded() {
    type Pattern = fn(usize) -> (String, String);
    let patterns: [Pattern; 20] = [
        |n| ("'".repeat(n), "?".to_owned()),
        |n| ("(".repeat(n), "(".repeat(n)),
        |n| ("IN (".repeat(n / 4), "IN (".repeat(n / 4)),
        |n| ("/* ".repeat(n / 3), String::new()),
        // `/*/*/` is a comment, then `*`, and so on.
        |n| ("/*".repeat(n / 2), vec!["*"; n / 6].join(" ")),
        |n| ("-".repeat(n), String::new()),
        |n| {
            (
                "IN (1, ".repeat(n / 7),
                "IN (?, ".repeat(n / 7).trim_end().to_owned(),
            )
        },
        |n| {
            (
                "VALUES (1), ".repeat(n / 12),
                "VALUES (?), ".repeat(n / 12).trim_end().to_owned(),
            )
        },
        |n| {
            (
                format!("VALUES {}(1)", "(1, 'a'), ".repeat(n / 10)),
                "VALUES (...)".to_owned(),
            )
        },
        |n| {
            (
                format!("IN ({}1)", "-1, ".repeat(n / 4)),
                "IN (...)".to_owned(),
            )
        },
        |n| ("IN (1)".repeat(n / 6), vec!["IN (...)"; n / 6].join(" ")),
        |n| ("1".repeat(n), "?".to_owned()),
        // Symbols are written one space apart: the output's longest.
        |n| ("\\".repeat(n), vec!["\\"; n].join(" ")),
        |n| ("'\\".repeat(n / 2), "?".to_owned()),
        // `$$` opens a string that the next `$$` closes.
        |n| ("$$".repeat(n / 2), vec!["?"; n / 4].join(" ")),
        // `$x$` opens a string that the next `$x$` closes; then a name.
        |n| {
            let input = "$x".repeat(n / 2);
            let expected = format!("? {}", input.get(7..).unwrap_or_default());
            (input, expected)
        },
        // `#` not followed by a space is an operator, all of it.
        |n| ("#".repeat(n), "#".repeat(n)),
        |n| ("# 1\n".repeat(n / 4), String::new()),
        |n| (r#""a""#.repeat(n / 3), r#""a""#.repeat(n / 3)),
        |n| {
            (
                "\u{3000}é ".repeat(n / 6),
                "é ".repeat(n / 6).trim_end().to_owned(),
            )
        },
    ];
    for size in [100_000, 1_000_000] {
        for pattern in patterns {
            let (input, expected) = pattern(size);
            let head = input.chars().take(12).collect::<String>();
            assert!(assert_tokens_tile(&input) <= input.len());
            let output = normalise(&input);
            assert!(output == expected, "{size} bytes of {head:?}…");
            assert!(output.len() <= 2 * input.len() + 16);
            assert_eq!(normalise(&output), output, "{size} bytes of {head:?}…");
        }
    }
}

/// Statements made of SQL's pieces, glued with or without spaces, so
/// that the rules meet each other.
fn sqlish() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        prop::sample::select(vec![
            "SELECT",
            "FROM",
            "WHERE",
            "AND",
            "IN",
            "in",
            "NOT",
            "VALUES",
            "NULL",
            "TRUE",
            "false",
            "THEN",
            "x",
            "E",
            "N",
            "t1",
            "col_2",
            "(",
            ")",
            ",",
            ";",
            "=",
            "-",
            "+",
            ".",
            "...",
            "::",
            ":",
            "*",
            "/",
            "--",
            "/*",
            "*/",
            "'",
            "\"",
            "\\",
            "`",
            "?",
            "?1",
            "$1",
            "$",
            ":name",
            "@v",
            "0x1F",
            "X'",
            "1e",
            "e-",
            "'it''s'",
            r"'it\'s'",
            r#""a""b""#,
            "`a``b`",
            "\n",
            "\t",
            " ",
            "  ",
            "é",
            "\u{3000}",
            "\0",
            "$$",
            "$a$",
            "#",
            "# ",
            "#>>",
            "->",
            "<=",
            "!",
            "IS",
            "asc",
            "ORDER BY",
            "U&'",
            "\"order\"",
            "\"T\"",
            "[",
            "]",
            "&",
        ])
        .prop_map(str::to_owned),
        "[0-9]{1,4}(\\.[0-9]{0,2})?",
        "[a-z_][a-z0-9_]{0,5}",
        "'[^']{0,5}'",
        "\\PC{0,3}",
    ];
    prop::collection::vec(fragment, 0..48).prop_map(|parts| parts.concat())
}

/// A statement, and its values: ids, names with quotes in them, a list.
fn statement_with_values() -> impl Strategy<Value = (i64, String, Vec<f64>)> {
    (
        any::<i64>(),
        any::<String>(),
        prop::collection::vec(
            any::<f64>().prop_filter("a number", |x| x.is_finite()),
            1..20,
        ),
    )
}

fn render((id, name, list): &(i64, String, Vec<f64>)) -> String {
    let list = list
        .iter()
        .map(|x| format!("{x:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let name = name.replace('\'', "''").replace('\\', "\\\\");
    format!("UPDATE t SET name = '{name}' WHERE id = {id} AND score IN ({list})")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn any_string_normalises_idempotently_within_bounds(input in any::<String>()) {
        prop_assert!(assert_tokens_tile(&input) <= input.len());
        let once = normalise(&input);
        prop_assert!(once.len() <= 2 * input.len() + 16);
        prop_assert_eq!(normalise(&once), once);
    }

    #[test]
    fn sqlish_strings_normalise_idempotently_within_bounds(input in sqlish()) {
        prop_assert!(assert_tokens_tile(&input) <= input.len());
        let once = normalise(&input);
        prop_assert!(once.len() <= 2 * input.len() + 16, "{:?} → {:?}", input, once);
        prop_assert_eq!(normalise(&once), once.clone(), "{:?} → {:?}", input, once);
    }

    #[test]
    fn statements_differing_in_values_compare_equal(
        a in statement_with_values(),
        b in statement_with_values(),
    ) {
        prop_assert_eq!(normalise(&render(&a)), normalise(&render(&b)));
    }
}
