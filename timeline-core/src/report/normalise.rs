//! Statements with their literal values replaced by placeholders, so that
//! the statements a loop issues compare equal: what the N+1 query detector
//! groups on.

/// `statement` with its literal values replaced by placeholders, so that
/// statements that differ only in their values compare equal: the N+1 query
/// detector groups on this.
///
/// - Numbers (`42`, `-1.5e3`, `.5`, `0x1F`), strings (`'it''s'`, `'it\'s'`,
///   `E'…'`, `N'…'`), blobs (`X'1F'`, `B'01'`) and `TRUE` and `FALSE` (in any
///   case) become `?`. An unterminated string runs to the end. A digit
///   inside a name (`table1`, `t2.col3`) is no number.
/// - Double-quoted text becomes `?` too. Standard SQL reads it as an
///   identifier, MySQL as a string; taking it for a value means MySQL's
///   loops group, at the cost of `"a"` and `"b"` comparing equal.
/// - A `-` or `+` is the sign of the number it touches only where it cannot
///   be an operator: first, or after `(`, `,`, an operator, or a keyword
///   such as `SELECT`, `WHERE`, `AND`, `THEN`. `a -1` keeps its `-`.
/// - An `IN (…)` list of literals and placeholders becomes `IN (...)`, and a
///   run of such `VALUES (…), (…)` tuples becomes `VALUES (...)`: one id or a
///   hundred, one row or a hundred, compare equal. A list holding anything
///   else (a name, a call, a subquery) keeps its shape.
/// - Comments (`-- …` to the end of the line, `/* … */`, not nested) go, and
///   whitespace folds to one space, with none at either end.
/// - Names (`` `order` ``), keywords (in their own case), `NULL` and the
///   placeholders already there (`?`, `?1`, `$1`, `:name`, `@name`) stay.
///
/// Any string is fine: this never panics, takes time linear in its length,
/// returns at most twice as many bytes, and normalising the result again
/// changes nothing.
///
/// # Examples
///
/// ```text
/// SELECT * FROM bug WHERE id = 42 AND title = 'it''s'
///   →  SELECT * FROM bug WHERE id = ? AND title = ?
/// DELETE FROM t WHERE id IN (1, 2, 3) AND flag = TRUE
///   →  DELETE FROM t WHERE id IN (...) AND flag = ?
/// INSERT INTO t (a, b) VALUES (1, 'a'), (2, 'b')
///   →  INSERT INTO t (a, b) VALUES (...)
/// SELECT a  -- why
///   FROM t1 WHERE x = $1
///   →  SELECT a FROM t1 WHERE x = $1
/// ```
pub fn normalise(statement: &str) -> String {
    let mut writer = Writer {
        out: String::with_capacity(statement.len()),
        space_pending: false,
        fold: None,
    };
    for token in Lexer::new(statement) {
        writer.push(token);
    }
    writer.finish()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// Whitespace or a comment.
    Blank,
    /// A value that varies from call to call: written as `?`.
    Literal,
    /// `?`, `?1`, `$1`, `:name` or `@name`.
    Placeholder,
    Null,
    /// The `...` of a list folded to `(...)`: reading it as a list item
    /// folds the list again, which keeps normalising idempotent.
    Ellipsis,
    /// An identifier or a keyword.
    Word,
    /// A backquoted identifier.
    QuotedName,
    /// One character of punctuation or operator, or `::`.
    Symbol,
}

impl Class {
    fn is_list_item(self) -> bool {
        matches!(
            self,
            Class::Literal | Class::Placeholder | Class::Null | Class::Ellipsis
        )
    }
}

#[derive(Clone, Copy, Debug)]
struct Token<'a> {
    class: Class,
    text: &'a str,
}

/// Cuts a statement into tokens that tile it: each token is at least one
/// character, and the lexer never steps back, so lexing is linear.
struct Lexer<'a> {
    input: &'a str,
    at: usize,
    /// Whether the last token that was not blank ends an operand (a value,
    /// a name, a `)`): a `-` or `+` after it is an operator, not a sign.
    after_operand: bool,
}

/// Keywords after which an operand is expected, so that a `-` or `+`
/// touching a digit is a sign: `WHERE -1`, `THEN +2`.
const KEYWORDS_BEFORE_OPERAND: &[&str] = &[
    "AND", "ANY", "ALL", "BETWEEN", "BY", "CASE", "DEFAULT", "DISTINCT", "DIV", "ELSE", "HAVING",
    "ILIKE", "IN", "IS", "LIKE", "LIMIT", "MOD", "NOT", "OFFSET", "ON", "OR", "RETURN", "SELECT",
    "SET", "SOME", "THEN", "VALUES", "WHEN", "WHERE",
];

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || (!c.is_ascii() && !c.is_whitespace())
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$' || (!c.is_ascii() && !c.is_whitespace())
}

impl<'a> Lexer<'a> {
    fn new(input: &'a str) -> Self {
        Lexer {
            input,
            at: 0,
            after_operand: false,
        }
    }

    fn rest(&self) -> &'a str {
        // `at` only ever moves past whole characters, or stops just after
        // an ASCII byte or at the end, so it is a character boundary.
        self.input.get(self.at..).unwrap_or_default()
    }

    fn peek_char(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn byte_at(&self, offset: usize) -> Option<u8> {
        self.input.as_bytes().get(self.at + offset).copied()
    }

    fn digit_at(&self, offset: usize) -> bool {
        self.byte_at(offset).is_some_and(|b| b.is_ascii_digit())
    }

    fn eat_while(&mut self, keep: impl Fn(char) -> bool) {
        while let Some(c) = self.peek_char().filter(|c| keep(*c)) {
            self.at += c.len_utf8();
        }
    }

    fn eat_digits(&mut self) {
        self.eat_while(|c| c.is_ascii_digit());
    }

    /// What the token whose first character, `first`, was just taken is;
    /// takes the rest of it.
    fn rest_of_token(&mut self, start: usize, first: char) -> Class {
        match first {
            '-' if self.byte_at(0) == Some(b'-') => {
                self.at = self
                    .rest()
                    .find('\n')
                    .map_or(self.input.len(), |n| self.at + n);
                Class::Blank
            }
            '/' if self.byte_at(0) == Some(b'*') => {
                self.at += 1;
                self.at = self
                    .rest()
                    .find("*/")
                    .map_or(self.input.len(), |n| self.at + n + 2);
                Class::Blank
            }
            c if c.is_whitespace() => {
                self.eat_while(char::is_whitespace);
                Class::Blank
            }
            '\'' | '"' => {
                self.skip_quoted(first, true);
                Class::Literal
            }
            '`' => {
                self.skip_quoted(first, false);
                Class::QuotedName
            }
            '0'..='9' => {
                self.rest_of_number(false);
                Class::Literal
            }
            '.' if self.byte_at(0) == Some(b'.') && self.byte_at(1) == Some(b'.') => {
                self.at += 2;
                Class::Ellipsis
            }
            '.' if !self.after_operand && self.digit_at(0) => {
                self.rest_of_number(true);
                Class::Literal
            }
            '-' | '+'
                if !self.after_operand
                    && (self.digit_at(0)
                        || (self.byte_at(0) == Some(b'.') && self.digit_at(1))) =>
            {
                let fraction_only = self.byte_at(0) == Some(b'.');
                self.at += usize::from(fraction_only);
                self.rest_of_number(fraction_only);
                Class::Literal
            }
            '?' => {
                self.eat_digits();
                Class::Placeholder
            }
            '$' if self.digit_at(0) => {
                self.eat_digits();
                Class::Placeholder
            }
            // A cast (`x::int`), not the placeholder `:int`.
            ':' if self.byte_at(0) == Some(b':') => {
                self.at += 1;
                Class::Symbol
            }
            ':' | '@' if self.peek_char().is_some_and(is_word_start) => {
                self.eat_while(is_word_char);
                Class::Placeholder
            }
            c if is_word_start(c) => self.rest_of_word(start, c),
            _ => Class::Symbol,
        }
    }

    fn rest_of_word(&mut self, start: usize, first: char) -> Class {
        self.eat_while(is_word_char);
        let word = self.input.get(start..self.at).unwrap_or_default();
        let is_string_prefix = word.len() == 1 && "xXbBnNeE".contains(first);
        if is_string_prefix && self.byte_at(0) == Some(b'\'') {
            self.at += 1;
            self.skip_quoted('\'', true);
            Class::Literal
        } else if word.eq_ignore_ascii_case("TRUE") || word.eq_ignore_ascii_case("FALSE") {
            Class::Literal
        } else if word.eq_ignore_ascii_case("NULL") {
            Class::Null
        } else {
            Class::Word
        }
    }

    /// Takes the rest of a run opened by `quote`, which a doubled `quote`
    /// (and with `backslash`, a backslash and the byte after it) does not
    /// close. Unterminated, it runs to the end.
    fn skip_quoted(&mut self, quote: char, backslash: bool) {
        let bytes = self.input.as_bytes();
        let quote = quote as u8;
        let mut at = self.at;
        while let Some(&byte) = bytes.get(at) {
            at += 1;
            if backslash && byte == b'\\' {
                // Skipping one byte may land inside a character, but only
                // ASCII ends the run, so it still ends on a boundary.
                at += 1;
            } else if byte == quote {
                if bytes.get(at) != Some(&quote) {
                    self.at = at;
                    return;
                }
                at += 1;
            }
        }
        self.at = bytes.len();
    }

    /// Takes the rest of a number: digits, a fraction unless `in_fraction`
    /// already, an exponent, and any letters glued on, so that `0x1F` and
    /// `1abc` are one literal rather than a `?` followed by a name.
    fn rest_of_number(&mut self, in_fraction: bool) {
        self.eat_digits();
        if !in_fraction && self.byte_at(0) == Some(b'.') {
            self.at += 1;
            self.eat_digits();
        }
        if matches!(self.byte_at(0), Some(b'e' | b'E')) {
            let signed = matches!(self.byte_at(1), Some(b'-' | b'+'));
            if self.digit_at(1 + usize::from(signed)) {
                self.at += 1 + usize::from(signed);
                self.eat_digits();
            }
        }
        self.eat_while(is_word_char);
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let start = self.at;
        let first = self.peek_char()?;
        // Taking the first character before anything else is what makes
        // every token, and every turn of the loop in `normalise`, advance.
        self.at += first.len_utf8();
        let class = self.rest_of_token(start, first);
        let text = self.input.get(start..self.at).unwrap_or_default();
        match class {
            Class::Blank => {}
            Class::Word => {
                self.after_operand = !KEYWORDS_BEFORE_OPERAND
                    .iter()
                    .any(|keyword| text.eq_ignore_ascii_case(keyword));
            }
            Class::Symbol => self.after_operand = matches!(text, ")" | "]" | "}"),
            _ => self.after_operand = true,
        }
        Some(Token { class, text })
    }
}

/// Writes tokens out, folding whitespace and lists as it goes.
struct Writer {
    out: String,
    /// Whitespace or a comment came since the last token written: one space
    /// goes before the next, unless it is the first.
    space_pending: bool,
    /// The list after an `IN` or `VALUES` being written, while it may still
    /// fold to `(...)`. Only one at a time: a list within a list holds a
    /// `(`, which ends the outer one's chance.
    fold: Option<Fold>,
}

#[derive(Clone, Copy, Debug)]
struct Fold {
    /// Where ` (...)` goes: just after the `IN` or `VALUES`.
    from: usize,
    /// A run of tuples (`VALUES`) rather than one list (`IN`).
    tuples: bool,
    expect: Expect,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// `(`, after the keyword or after the `,` between two tuples.
    Open,
    /// A literal or a placeholder.
    Item,
    /// `,` or `)`.
    Separator,
    /// After a tuple: a `,` and another tuple, or the end of the run.
    MoreTuples,
}

impl Writer {
    fn push(&mut self, token: Token<'_>) {
        if token.class == Class::Blank {
            self.space_pending = true;
            return;
        }
        if let Some(fold) = self.fold.take() {
            if self.continue_fold(fold, token) {
                return;
            }
        }
        self.write(token);
        if token.class == Class::Word {
            let tuples = token.text.eq_ignore_ascii_case("VALUES");
            if tuples || token.text.eq_ignore_ascii_case("IN") {
                self.fold = Some(Fold {
                    from: self.out.len(),
                    tuples,
                    expect: Expect::Open,
                });
            }
        }
    }

    /// Writes `token` as the next part of the list that may fold, if it is
    /// one. If not, the list stays as written (or, after a whole run of
    /// tuples, folds) and `token` is the caller's to write.
    fn continue_fold(&mut self, mut fold: Fold, token: Token<'_>) -> bool {
        let next = match (fold.expect, token.text) {
            (Expect::Open, "(") | (Expect::Separator, ",") => Expect::Item,
            (Expect::Item, _) if token.class.is_list_item() => Expect::Separator,
            (Expect::Separator, ")") if fold.tuples => Expect::MoreTuples,
            (Expect::Separator, ")") => {
                self.fold_list(fold.from);
                self.space_pending = false;
                return true;
            }
            (Expect::MoreTuples, ",") => Expect::Open,
            (Expect::MoreTuples, _) => {
                self.fold_list(fold.from);
                return false;
            }
            _ => return false,
        };
        self.write(token);
        fold.expect = next;
        self.fold = Some(fold);
        true
    }

    /// Replaces everything written since `from` by ` (...)`: at most six
    /// bytes for at least the three of `(x)`, once per list.
    fn fold_list(&mut self, from: usize) {
        self.out.truncate(from);
        self.out.push_str(" (...)");
    }

    fn write(&mut self, token: Token<'_>) {
        if self.space_pending && !self.out.is_empty() {
            self.out.push(' ');
        }
        self.space_pending = false;
        self.out.push_str(match token.class {
            Class::Literal => "?",
            _ => token.text,
        });
    }

    fn finish(mut self) -> String {
        if let Some(fold) = self.fold.filter(|fold| fold.expect == Expect::MoreTuples) {
            self.fold_list(fold.from);
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::{Lexer, normalise};
    use proptest::prelude::*;

    #[test]
    fn each_rule_on_examples() {
        let cases = [
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
                "x = ? AND y = a -? AND z = (?)",
            ),
            ("SELECT -1, a-1, 2-1, f(x)-1", "SELECT ?, a-?, ?-?, f(x)-?"),
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
            // Booleans, whole words only; NULL stays.
            (
                "WHERE a = TRUE OR b = false OR truest = 1",
                "WHERE a = ? OR b = ? OR truest = ?",
            ),
            ("WHERE x IS NULL OR y = null", "WHERE x IS NULL OR y = null"),
            // Strings: doubled quotes, backslashes, prefixes, unterminated.
            ("WHERE title = 'it''s'", "WHERE title = ?"),
            (
                r"WHERE title = 'it\'s' AND x = 1",
                "WHERE title = ? AND x = ?",
            ),
            (
                r#"WHERE a = "say ""hi""" AND b = "a\"b""#,
                "WHERE a = ? AND b = ?",
            ),
            (r"WHERE a = N'ünï' OR a = E'a\'b'", "WHERE a = ? OR a = ?"),
            ("WHERE title = 'unterminated AND x = 1", "WHERE title = ?"),
            // IN lists.
            ("WHERE id IN (1, 2, 3)", "WHERE id IN (...)"),
            (
                "WHERE id in('a',\n 'b' , NULL, ?, $2, :n, @v, -7)",
                "WHERE id in (...)",
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
            (
                "WHERE (a, b) IN ((1, 2), (3, 4))",
                "WHERE (a, b) IN ((?, ?), (?, ?))",
            ),
            ("WHERE id IN ()", "WHERE id IN ()"),
            // VALUES tuples.
            (
                "INSERT INTO t (a, b) VALUES (1, 'a'), (2, 'b'), (3, 'c')",
                "INSERT INTO t (a, b) VALUES (...)",
            ),
            ("INSERT INTO t VALUES(1);", "INSERT INTO t VALUES (...);"),
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
                "INSERT INTO t VALUES (...) ON DUPLICATE KEY UPDATE a = VALUES(a)",
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
            ("SELECT a[1:2], 1abc, 12_000", "SELECT a[?:?], ?, ?"),
            // Comments and whitespace; the case of keywords stays.
            (
                "SELECT a -- the answer: 42\nFROM t /* 7 */ WHERE b = 1/**/",
                "SELECT a FROM t WHERE b = ?",
            ),
            ("SELECT a/*unterminated 1", "SELECT a"),
            ("  select\n\t*\r\n  From   T  ", "select * From T"),
            ("a/**/b-/**/-1", "a b- ?"),
            // Unicode, and strings that are hardly SQL.
            (
                "SELECT 'é' || 'ü', ünï1 FROM tää WHERE n = 3\u{3000}",
                "SELECT ? || ?, ünï1 FROM tää WHERE n = ?",
            ),
            ("LIMIT 10 OFFSET 20", "LIMIT ? OFFSET ?"),
            ("x=1", "x=?"),
            ("f(1,2)", "f(?,?)"),
            ("", ""),
            (" \n ", ""),
            ("'", "?"),
            ("\0", "\0"),
            // Already normalised.
            ("WHERE id IN (...) AND x = ?", "WHERE id IN (...) AND x = ?"),
            ("INSERT INTO t VALUES (...)", "INSERT INTO t VALUES (...)"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalise(input), expected, "normalising {input:?}");
            assert_eq!(
                normalise(expected),
                expected,
                "normalising {expected:?} again"
            );
        }
    }

    #[test]
    fn statements_of_a_loop_compare_equal() {
        let loops = [
            (
                "SELECT * FROM bug WHERE id = 1",
                "SELECT * FROM bug WHERE id = 2",
            ),
            (
                "SELECT * FROM t WHERE id IN (1, 2, 3)",
                "SELECT * FROM t WHERE id IN (4)",
            ),
            (
                "SELECT * FROM t WHERE id IN (?, ?, ?)",
                "SELECT * FROM t WHERE id IN (?)",
            ),
            (
                "INSERT INTO t VALUES (1, 'a')",
                "INSERT INTO t VALUES (1, 'a'), (2, 'b')",
            ),
            (
                "UPDATE bug SET title = 'x' WHERE id = 7",
                "UPDATE bug SET title = 'it''s y' WHERE id = 8",
            ),
            (
                "SELECT *\n  FROM t WHERE a = -1 -- first",
                "SELECT * FROM t WHERE a = 2",
            ),
        ];
        for (a, b) in loops {
            assert_eq!(normalise(a), normalise(b), "{a:?} and {b:?}");
        }
        let different = [
            ("SELECT * FROM t1", "SELECT * FROM t2"),
            ("SELECT * FROM t WHERE a = 1", "SELECT * FROM t WHERE b = 1"),
            (
                "SELECT * FROM t WHERE a IN (1)",
                "SELECT * FROM t WHERE a IN (b)",
            ),
        ];
        for (a, b) in different {
            assert_ne!(normalise(a), normalise(b), "{a:?} and {b:?}");
        }
    }

    #[test]
    fn double_quoted_text_is_a_value_even_where_it_names_a_column() {
        assert_eq!(
            normalise(r#"SELECT "a" FROM t"#),
            normalise(r#"SELECT "b" FROM t"#)
        );
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
        let patterns: [Pattern; 15] = [
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
            |n| ("IN (1)".repeat(n / 6), "IN (...)".repeat(n / 6)),
            |n| ("1".repeat(n), "?".to_owned()),
            |n| ("\\".repeat(n), "\\".repeat(n)),
            |n| ("'\\".repeat(n / 2), "?".to_owned()),
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
}
