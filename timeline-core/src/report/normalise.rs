//! Statements with their literal values replaced by placeholders, so that
//! statements issued in a loop compare equal: what the N+1 detector groups.

/// `statement` with its literal values replaced by placeholders.
///
/// One pass, linear in the input, never panicking on any input:
///
/// - numbers (`42`, `-1.5e3`, `.5`), hex numbers (`0x1F`), blobs (`X'1F'`),
///   booleans (`TRUE`, `false`), and single- or double-quoted strings (with
///   doubled or backslash-escaped quotes; an unterminated one runs to the
///   end) become `?`. Double-quoted text is a string in MySQL and an
///   identifier in standard SQL; it becomes `?` either way, so that both
///   dialects group their loops.
/// - an `IN (…)` list of literals becomes `IN (...)`, and a run of
///   `VALUES (…), (…)` tuples of literals becomes `VALUES (...)`, so that
///   one row and a hundred compare equal.
/// - comments (`-- …`, `/* … */`) go, and whitespace folds to one space.
/// - identifiers (`table1`, `t2.col3`, `` `x1` ``), `NULL`, keywords and the
///   placeholders already there (`?`, `?1`, `$1`, `:name`, `@name`) stay as
///   written.
///
/// Normalising twice gives the same as normalising once.
///
/// ```text
/// SELECT * FROM bug WHERE id = 42 AND title = 'it''s'  →  SELECT * FROM bug WHERE id = ? AND title = ?
/// DELETE FROM t WHERE id IN (1, 2, 3)                   →  DELETE FROM t WHERE id IN (...)
/// INSERT INTO t VALUES (1, 'a'), (2, 'b')               →  INSERT INTO t VALUES (...)
/// ```
pub fn normalise(statement: &str) -> String {
    let mut out = Normaliser {
        input: statement.as_bytes(),
        at: 0,
        out: Vec::with_capacity(statement.len()),
        pending_space: false,
    };
    out.run();
    // Every byte copied comes from the input at an ASCII boundary, or is
    // ASCII itself, so the output is UTF-8; the fallback never runs.
    String::from_utf8(out.out)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

struct Normaliser<'a> {
    input: &'a [u8],
    at: usize,
    out: Vec<u8>,
    pending_space: bool,
}

/// Bytes that continue an identifier (or placeholder name): a digit after
/// one of them is part of a name, not a number.
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'?' | b':' | b'@' | b'.') || b >= 0x80
}

fn is_identifier_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_identifier_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

impl Normaliser<'_> {
    fn peek(&self, offset: usize) -> Option<u8> {
        self.input.get(self.at + offset).copied()
    }

    /// Writes a token, with the folded whitespace before it.
    fn emit(&mut self, token: &[u8]) {
        if self.pending_space && !self.out.is_empty() {
            self.out.push(b' ');
        }
        self.pending_space = false;
        self.out.extend_from_slice(token);
    }

    /// Every iteration consumes at least one byte: linear.
    fn run(&mut self) {
        while let Some(b) = self.peek(0) {
            let start = self.at;
            match b {
                b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c' => {
                    self.at += 1;
                    self.pending_space = true;
                }
                b'-' if self.peek(1) == Some(b'-') => {
                    self.skip_line_comment();
                    self.pending_space = true;
                }
                b'/' if self.peek(1) == Some(b'*') => {
                    self.skip_block_comment();
                    self.pending_space = true;
                }
                b'`' => {
                    self.at = quoted_end(self.input, self.at, b'`', false);
                    let token = &self.input[start..self.at];
                    self.emit(token);
                }
                b'[' => {
                    self.at = quoted_end(self.input, self.at, b']', false);
                    let token = &self.input[start..self.at];
                    self.emit(token);
                }
                _ => {
                    if let Some(end) = literal_end(self.input, self.at, self.previous_output()) {
                        if is_number_start(b)
                            && self.input.get(end).is_some_and(|b| is_identifier_byte(*b))
                        {
                            // `1abc`, `0SELECT`: not a number but a name.
                            self.at = end;
                            while self.peek(0).is_some_and(is_identifier_byte) {
                                self.at += 1;
                            }
                            let token = &self.input[start..self.at];
                            self.emit(token);
                            continue;
                        }
                        self.at = end;
                        self.emit(b"?");
                    } else if is_identifier_start(b) && !self.follows_name() {
                        self.identifier();
                    } else {
                        self.at += 1;
                        let token = &self.input[start..self.at];
                        self.emit(token);
                    }
                }
            }
        }
    }

    /// The last byte written: whitespace is folded away, so `, -1` and
    /// `,-1` read the same.
    fn previous_output(&self) -> Option<u8> {
        self.out.last().copied()
    }

    /// Whether the byte before the current one (in the input) continues a
    /// name, so that what follows does too.
    fn follows_name(&self) -> bool {
        self.at > 0 && is_name_byte(self.input[self.at - 1]) && !self.pending_space
    }

    fn identifier(&mut self) {
        let start = self.at;
        while self.peek(0).is_some_and(is_identifier_byte) {
            self.at += 1;
        }
        let word = &self.input[start..self.at];
        if word.eq_ignore_ascii_case(b"true") || word.eq_ignore_ascii_case(b"false") {
            self.emit(b"?");
        } else if word.eq_ignore_ascii_case(b"in") {
            self.emit(word);
            if let Some(end) = tuple_end(self.input, skip_blanks(self.input, self.at)) {
                self.at = end;
                self.emit_after_space(b"(...)");
            }
        } else if word.eq_ignore_ascii_case(b"values") {
            self.emit(word);
            let mut end = None;
            let mut next = skip_blanks(self.input, self.at);
            while let Some(tuple) = tuple_end(self.input, next) {
                end = Some(tuple);
                let after = skip_blanks(self.input, tuple);
                if self.input.get(after) != Some(&b',') {
                    break;
                }
                next = skip_blanks(self.input, after + 1);
            }
            if let Some(end) = end {
                self.at = end;
                self.emit_after_space(b"(...)");
            }
        } else {
            self.emit(word);
        }
    }

    fn emit_after_space(&mut self, token: &[u8]) {
        self.pending_space = true;
        self.emit(token);
    }

    fn skip_line_comment(&mut self) {
        while let Some(b) = self.peek(0) {
            self.at += 1;
            if b == b'\n' {
                break;
            }
        }
    }

    fn skip_block_comment(&mut self) {
        self.at += 2;
        while self.at < self.input.len() {
            if self.input[self.at] == b'*' && self.peek(1) == Some(b'/') {
                self.at += 2;
                return;
            }
            self.at += 1;
        }
    }
}

/// Whether a literal starting with `b` is a number (rather than a string).
fn is_number_start(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+')
}

/// Past whitespace and comments, as the main pass folds them.
fn skip_blanks(input: &[u8], mut at: usize) -> usize {
    loop {
        match (input.get(at), input.get(at + 1)) {
            (Some(b), _) if b.is_ascii_whitespace() => at += 1,
            (Some(b'-'), Some(b'-')) => {
                while input.get(at).is_some_and(|b| *b != b'\n') {
                    at += 1;
                }
            }
            (Some(b'/'), Some(b'*')) => {
                at += 2;
                while at < input.len() && !(input[at] == b'*' && input.get(at + 1) == Some(&b'/')) {
                    at += 1;
                }
                at = (at + 2).min(input.len());
            }
            _ => return at,
        }
    }
}

/// The end of a quoted run starting at `at` (which holds the opening
/// quote); doubled closing quotes, and with `backslash` escaped characters,
/// continue it. Unterminated: the end of the input.
fn quoted_end(input: &[u8], at: usize, close: u8, backslash: bool) -> usize {
    let mut i = at + 1;
    while i < input.len() {
        let b = input[i];
        if backslash && b == b'\\' {
            i += 2;
        } else if b == close {
            if input.get(i + 1) == Some(&close) && close != b']' {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    input.len()
}

/// The end of the literal starting at `at`, if one does. `previous` is the
/// last byte of output, which decides whether a sign is unary.
fn literal_end(input: &[u8], at: usize, previous: Option<u8>) -> Option<usize> {
    let b = input[at];
    let after_name = at > 0 && is_name_byte(input[at - 1]);
    match b {
        b'\'' | b'"' => Some(quoted_end(input, at, b, true)),
        b'x' | b'X' if input.get(at + 1) == Some(&b'\'') && !after_name => {
            Some(quoted_end(input, at + 1, b'\'', false))
        }
        b'0'..=b'9' if !after_name => Some(number_end(input, at)),
        b'.' if !after_name && input.get(at + 1).is_some_and(u8::is_ascii_digit) => {
            Some(number_end(input, at))
        }
        b'-' | b'+'
            if !after_name
                && input
                    .get(at + 1)
                    .is_some_and(|n| n.is_ascii_digit() || *n == b'.')
                && previous.is_none_or(|p| {
                    matches!(
                        p,
                        b'(' | b','
                            | b'='
                            | b'<'
                            | b'>'
                            | b'!'
                            | b'*'
                            | b'/'
                            | b'%'
                            | b'|'
                            | b'&'
                            | b'^'
                    )
                })
                && input
                    .get(at + 1 + usize::from(input.get(at + 1) == Some(&b'.')))
                    .is_some_and(u8::is_ascii_digit) =>
        {
            Some(number_end(input, at + 1))
        }
        _ => None,
    }
}

/// The end of the number starting at `at`: hex, or digits with an optional
/// fraction and exponent.
fn number_end(input: &[u8], at: usize) -> usize {
    let digits = |mut i: usize, hex: bool| {
        while input.get(i).is_some_and(|b| {
            if hex {
                b.is_ascii_hexdigit()
            } else {
                b.is_ascii_digit()
            }
        }) {
            i += 1;
        }
        i
    };
    if input[at] == b'0'
        && matches!(input.get(at + 1), Some(b'x' | b'X'))
        && input.get(at + 2).is_some_and(u8::is_ascii_hexdigit)
    {
        return digits(at + 2, true);
    }
    let mut i = digits(at, false);
    if input.get(i) == Some(&b'.') {
        i = digits(i + 1, false);
    }
    if matches!(input.get(i), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(input.get(i + 1), Some(b'+' | b'-')));
        if input.get(i + 1 + sign).is_some_and(u8::is_ascii_digit) {
            i = digits(i + 1 + sign, false);
        }
    }
    i
}

/// The end of a `(…)` tuple starting at `at` whose items are all literals
/// or placeholders, if there is one. Scans only as far as literals go.
fn tuple_end(input: &[u8], at: usize) -> Option<usize> {
    if input.get(at) != Some(&b'(') {
        return None;
    }
    let mut i = skip_blanks(input, at + 1);
    loop {
        i = skip_blanks(input, literal_item_end(input, i)?);
        match input.get(i)? {
            b',' => i = skip_blanks(input, i + 1),
            b')' => return Some(i + 1),
            _ => return None,
        }
    }
}

/// The end of one literal or placeholder item of a tuple.
fn literal_item_end(input: &[u8], at: usize) -> Option<usize> {
    let b = *input.get(at)?;
    match b {
        // `?`, `?1`, `$1`: digits only, as the main pass reads them.
        b'?' | b'$' => {
            let mut i = at + 1;
            while input.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            Some(i)
        }
        b':' | b'@' if input.get(at + 1).is_some_and(|b| is_identifier_start(*b)) => {
            let mut i = at + 1;
            while input.get(i).is_some_and(|b| is_identifier_byte(*b)) {
                i += 1;
            }
            Some(i)
        }
        b'-' | b'+'
            if input
                .get(at + 1)
                .is_some_and(|n| n.is_ascii_digit() || *n == b'.') =>
        {
            literal_item_end(input, at + 1)
                .filter(|_| input[at + 1] != b'-' && input[at + 1] != b'+')
        }
        _ if is_identifier_start(b)
            && !(matches!(b, b'x' | b'X') && input.get(at + 1) == Some(&b'\'')) =>
        {
            let mut i = at;
            while input.get(i).is_some_and(|b| is_identifier_byte(*b)) {
                i += 1;
            }
            let word = &input[at..i];
            let literal = ["true", "false", "null"]
                .iter()
                .any(|w| word.eq_ignore_ascii_case(w.as_bytes()));
            literal.then_some(i)
        }
        _ => {
            let end = literal_end(input, at, Some(b'('))?;
            // A number must end the item, not run into a name (`1abc`).
            (!input.get(end).is_some_and(|b| is_identifier_byte(*b))).then_some(end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::normalise;
    use proptest::prelude::*;

    #[test]
    fn literal_values_become_placeholders() {
        let cases = [
            (
                "SELECT * FROM bug WHERE id = 1",
                "SELECT * FROM bug WHERE id = ?",
            ),
            (
                "SELECT * FROM bug WHERE id = 42",
                "SELECT * FROM bug WHERE id = ?",
            ),
            (
                "SELECT 1.5, -2, +3e10, .5, 6.02E-23",
                "SELECT ?, ?, ?, ?, ?",
            ),
            ("x = -1 AND y = a -1", "x = ? AND y = a -?"),
            (
                "WHERE a = 0x1F AND b = X'DEADBEEF' AND c = x'00'",
                "WHERE a = ? AND b = ? AND c = ?",
            ),
            (
                "WHERE flag = TRUE OR other = false",
                "WHERE flag = ? OR other = ?",
            ),
            ("WHERE title = 'it''s'", "WHERE title = ?"),
            (
                r"WHERE title = 'it\'s' AND x = 1",
                "WHERE title = ? AND x = ?",
            ),
            (
                r#"WHERE title = "say ""hi""" AND y = "a\"b""#,
                "WHERE title = ? AND y = ?",
            ),
            ("WHERE title = 'unterminated", "WHERE title = ?"),
            ("WHERE id IN (1, 2, 3)", "WHERE id IN (...)"),
            ("WHERE id IN (4)", "WHERE id IN (...)"),
            (
                "WHERE id in('a',\n 'b' , NULL, ?, $2, :name)",
                "WHERE id in (...)",
            ),
            (
                "WHERE id IN (SELECT id FROM t WHERE x = 1)",
                "WHERE id IN (SELECT id FROM t WHERE x = ?)",
            ),
            (
                "INSERT INTO t (a, b) VALUES (1, 'a'), (2, 'b'), (3, 'c')",
                "INSERT INTO t (a, b) VALUES (...)",
            ),
            ("INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (...)"),
            (
                "INSERT INTO t VALUES (1, now())",
                "INSERT INTO t VALUES (?, now())",
            ),
            (
                "SELECT col1, t2.col3 FROM table1 t2",
                "SELECT col1, t2.col3 FROM table1 t2",
            ),
            (
                "SELECT * FROM t WHERE a = $1 AND b = ?2 AND c = :name AND d = @v1 AND e = ?",
                "SELECT * FROM t WHERE a = $1 AND b = ?2 AND c = :name AND d = @v1 AND e = ?",
            ),
            (
                "SELECT a -- the answer: 42\nFROM t /* 7 */ WHERE b = 1",
                "SELECT a FROM t WHERE b = ?",
            ),
            ("  SELECT\n\t*\r\n  FROM   t  ", "SELECT * FROM t"),
            (
                "SELECT `col1` FROM [table 2] WHERE x IS NULL",
                "SELECT `col1` FROM [table 2] WHERE x IS NULL",
            ),
            (
                "SELECT 'é' || 'ü', ünï1 FROM tää WHERE n = 3",
                "SELECT ? || ?, ünï1 FROM tää WHERE n = ?",
            ),
            ("LIMIT 10 OFFSET 20", "LIMIT ? OFFSET ?"),
            ("x=1", "x=?"),
            ("f(1,2)", "f(?,?)"),
            ("", ""),
            ("'", "?"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalise(input), expected, "normalising {input:?}");
        }
    }

    #[test]
    fn statements_of_a_loop_compare_equal() {
        let pairs = [
            (
                "SELECT name FROM person WHERE id = 1",
                "SELECT name FROM person WHERE id = 20",
            ),
            (
                "SELECT * FROM t WHERE id IN (1, 2, 3)",
                "SELECT * FROM t WHERE id IN (4)",
            ),
            (
                "INSERT INTO t VALUES (1, 'a')",
                "INSERT INTO t VALUES (1, 'a'), (2, 'b')",
            ),
            (
                "UPDATE bug SET title = 'x' WHERE id = 7",
                "UPDATE bug SET title = 'it''s y' WHERE id = 8",
            ),
        ];
        for (a, b) in pairs {
            assert_eq!(normalise(a), normalise(b));
        }
        assert_ne!(normalise("SELECT * FROM t1"), normalise("SELECT * FROM t2"));
    }

    #[test]
    fn adversarial_inputs_stay_bounded() {
        let size = 1_000_000;
        let inputs = [
            "'".repeat(size),
            "(".repeat(size),
            "IN (".repeat(size / 4),
            "/*".repeat(size / 2),
            "IN (1, ".repeat(size / 7),
            "VALUES (1), ".repeat(size / 12),
            "1".repeat(size),
            "\\".repeat(size),
        ];
        for input in inputs {
            let output = normalise(&input);
            assert!(output.len() <= 2 * input.len() + 16);
            assert_eq!(normalise(&output), output);
        }
    }

    fn sqlish() -> impl Strategy<Value = String> {
        let fragment = prop_oneof![
            Just("SELECT ".to_owned()),
            Just("IN".to_owned()),
            Just("VALUES".to_owned()),
            Just(" ( ".to_owned()),
            Just(")".to_owned()),
            Just(", ".to_owned()),
            Just("'".to_owned()),
            Just("\"".to_owned()),
            Just("\\".to_owned()),
            Just("--".to_owned()),
            Just("/*".to_owned()),
            Just("*/".to_owned()),
            Just("\n".to_owned()),
            Just("-".to_owned()),
            Just("0x".to_owned()),
            Just("X'".to_owned()),
            Just("TRUE".to_owned()),
            Just("$1".to_owned()),
            Just(":name".to_owned()),
            Just("?".to_owned()),
            Just(".".to_owned()),
            Just("e".to_owned()),
            "[0-9]{1,4}".prop_map(|s| s),
            "[a-z_][a-z0-9_]{0,5}".prop_map(|s| s),
            "'[^']{0,5}'".prop_map(|s| s),
            "\\PC{0,3}".prop_map(|s| s),
        ];
        prop::collection::vec(fragment, 0..40).prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

        #[test]
        fn any_string_normalises_idempotently_within_bounds(input in any::<String>()) {
            let once = normalise(&input);
            prop_assert!(once.len() <= 2 * input.len() + 16);
            prop_assert_eq!(normalise(&once), once);
        }

        #[test]
        fn sqlish_strings_normalise_idempotently_within_bounds(input in sqlish()) {
            let once = normalise(&input);
            prop_assert!(once.len() <= 2 * input.len() + 16);
            prop_assert_eq!(normalise(&once), once.clone(), "input {:?}", input);
        }
    }
}
