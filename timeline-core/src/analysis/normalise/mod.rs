//! Statements with their literal values replaced by placeholders, so that
//! the statements a loop issues compare equal: what the N+1 query detector
//! groups on.
//!
//! # Whose rules
//!
//! Three fingerprints of SQL are in wide use, and [`normalise`] follows
//! what they agree on:
//!
//! - PostgreSQL's `pg_stat_statements`, which groups by a hash of the
//!   parse tree ("query jumbling") and shows constants as `$1`, `$2`…
//!   (`contrib/pg_stat_statements`, its `expected/*.out` tests, and
//!   pganalyze's `libpg_query` normalize tests);
//! - MySQL's statement digests (`performance_schema`, `DIGEST_TEXT`,
//!   `STATEMENT_DIGEST_TEXT()`), computed from the parser's tokens
//!   (`sql/sql_digest.cc`, `mysql-test/suite/perfschema/r/statement_digest.result`);
//! - Percona's `pt-fingerprint` and `pt-query-digest`
//!   (`QueryRewriter::fingerprint`, `t/lib/QueryRewriter.t`).
//!
//! What all three agree on, and this module does:
//!
//! - numbers, strings and the other literals are values;
//! - comments and the amount and kind of whitespace do not matter, nor the
//!   case of keywords;
//! - a list of values after `IN` is one value, whatever its length
//!   (PostgreSQL squashes lists of two and more since version 18; MySQL and
//!   pt-fingerprint also fold a list of one);
//! - a unary minus or plus belongs to the number it precedes, a binary one
//!   is an operator (`a = -1` has one value, `a-1` an operator and one);
//! - a digit inside a name is part of the name: `customer1` and `customer2`
//!   are different tables (pt-fingerprint alone replaces it, and only
//!   optionally).
//!
//! What two of the three agree on, and this module follows:
//!
//! - `NULL` as a value is a value, `IS NULL` and `NOT NULL` are not
//!   (PostgreSQL, MySQL; pt-fingerprint replaces every `NULL`);
//! - `TRUE` and `FALSE` are values (PostgreSQL, pt-fingerprint; MySQL keeps
//!   them as keywords);
//! - where whitespace falls between tokens does not matter: `a=1` is
//!   `a = 1` (PostgreSQL, MySQL; pt-fingerprint skips this for speed);
//! - a name compares equal with and without quotes, `` `t1` ``, `"t1"` and
//!   `t1` alike, and unquoted names compare without regard to case
//!   (PostgreSQL folds unquoted names to lower case, MySQL compares column
//!   names without case, pt-fingerprint lowercases everything);
//! - `ORDER BY a ASC` is `ORDER BY a` (PostgreSQL, where both sort alike,
//!   and pt-fingerprint; MySQL keeps the `ASC`);
//! - a `;` ending the statement does not matter (PostgreSQL and MySQL see
//!   statements, not their terminators);
//! - `ORDER BY 1` and `LIMIT 10` hold values, and `LIMIT ?` differs from
//!   `LIMIT ? OFFSET ?` (MySQL and pt-fingerprint replace the numbers,
//!   PostgreSQL the `LIMIT` ones; PostgreSQL and MySQL keep the clauses
//!   apart, which pt-fingerprint folds into one `limit ?`);
//! - other runs of values stay as they are: `SELECT 1, 2` is `SELECT ?, ?`
//!   (PostgreSQL and pt-fingerprint; MySQL writes `SELECT ?, ...`).
//!
//! Where they part, and what this module chose:
//!
//! - **Double-quoted text** is a name in standard SQL, PostgreSQL and
//!   SQLite, a string in MySQL's default mode (and so in pt-fingerprint).
//!   Here it is a name: the ORMs of PostgreSQL and SQLite (diesel, sea-orm,
//!   ActiveRecord) quote every name with it, and reading those names as
//!   values would merge statements on different tables into one false N+1.
//!   MySQL code that quotes strings with `"` groups by value; its ORMs quote
//!   names with backquotes and values with `'`.
//! - **Rows after `VALUES`**: a run of tuples of values becomes
//!   `VALUES (...)`, one row or a hundred, as pt-fingerprint does. MySQL
//!   keeps one row apart from several and one column apart from several;
//!   PostgreSQL keeps every row. A loop inserting batches of varying size
//!   is one pattern.
//! - **A list of tuples after `IN`** (`(a, b) IN ((1, 2), (3, 4))`) folds
//!   too, whatever the number of tuples, as MySQL folds the tuples;
//!   PostgreSQL keeps them, pt-fingerprint does not recognise them.
//! - **Placeholders** already in the statement (`?`, `?1`, `$1`, `:name`,
//!   `@name`) stay as written. PostgreSQL keeps parameters apart from
//!   constants; MySQL and pt-fingerprint do not, but a loop issues one
//!   statement in one style.
//! - **Special comments**: MySQL runs the SQL inside `/*! … */` and keeps
//!   optimizer hints `/*+ … */`, pt-fingerprint keeps `/*! … */`;
//!   PostgreSQL ignores both. Here every comment goes: a loop issues the
//!   same hints each time.
//! - **`#`** starts a comment in MySQL and pt-fingerprint and is an operator
//!   in PostgreSQL (`#>`, `#>>`, `#-`, `#`). Here `#` followed by
//!   whitespace starts a comment, and any other `#` is an operator.
//! - **Dollar quoting** (`$$…$$`, `$tag$…$tag$`) is PostgreSQL's and makes a
//!   string (as libpg_query's tests show); elsewhere `$` starts no string,
//!   and nothing else reads it as one. It is a value here.
//! - **pt-fingerprint's special cases** (`mysqldump`, `call foo`,
//!   `use ?`, folding repeated `UNION`s, numbers inside names) are not
//!   followed: they are about logs of whole servers, and would hide
//!   differences between the statements of a request.
//!
//! The output shows keywords in upper case and names in lower case, as
//! MySQL's digest text and PostgreSQL's folding would, with one space
//! between tokens except inside `f(x)`, `a.b`, `x::int` and before `,`.

mod keywords;
#[cfg(test)]
mod tests;

#[cfg(test)]
use keywords::KEYWORDS;
use keywords::{KEYWORDS_BEFORE_OPERAND, is_keyword};

/// `statement` with its literal values replaced by placeholders, so that
/// statements that differ only in their values compare equal: the N+1 query
/// detector groups on this. The rules follow those on which PostgreSQL's
/// `pg_stat_statements`, MySQL's statement digests and Percona's
/// `pt-fingerprint` agree; the module documentation lists them, their
/// sources, and the choices made where those disagree.
///
/// - Numbers (`42`, `-1.5e3`, `.5`, `0x1F`), strings (`'it''s'`, `'it\'s'`,
///   `E'…'`, `N'…'`, `U&'…'`, `$$…$$`), blobs (`X'1F'`, `B'01'`), `TRUE`,
///   `FALSE` and `NULL` (but not the `NULL` of `IS NULL` and `NOT NULL`)
///   become `?`. An unterminated string runs to the end. A digit inside a
///   name (`table1`, `t2.col3`) is no number.
/// - A `-` or `+` is the sign of the number it touches only where it cannot
///   be an operator: first, or after `(`, `,`, an operator, or a keyword
///   such as `SELECT`, `WHERE`, `AND`, `THEN`. `a -1` keeps its `-`.
/// - An `IN (…)` list of values (or of tuples of values) becomes
///   `IN (...)`, and a run of `VALUES (…), (…)` tuples of values becomes
///   `VALUES (...)`: one id or a hundred, one row or a hundred, compare
///   equal. A list holding anything else (a name, a call, a subquery) keeps
///   its shape.
/// - Comments (`-- …` and `# …` to the end of the line, `/* … */`) go, as
///   do `ASC` and a final `;`. Tokens are written with one space between
///   them, none inside `f(x)`, `a[1]`, `t.col` and `x::int` or before `,`
///   and `)`.
/// - Keywords are written in upper case, other names in lower case; a
///   quoted name (`` `bug` ``, `"bug"`) that needs no quotes loses them.
/// - Placeholders already there (`?`, `?1`, `$1`, `:name`, `@name`) stay.
///
/// Any string is fine: this never panics, takes time linear in its length,
/// returns at most twice as many bytes, and normalising the result again
/// changes nothing.
///
/// # Examples
///
/// ```text
/// select * from Bug where id=42 and title = 'it''s';
///   →  SELECT * FROM bug WHERE id = ? AND title = ?
/// DELETE FROM t WHERE id IN (1, 2, 3) AND flag = TRUE AND x IS NOT NULL
///   →  DELETE FROM t WHERE id IN (...) AND flag = ? AND x IS NOT NULL
/// INSERT INTO "t" ("a", "b") VALUES (1, 'a'), (2, NULL)
///   →  INSERT INTO t(a, b) VALUES (...)
/// SELECT a  -- why
///   FROM t1 WHERE x = $1 ORDER BY a ASC
///   →  SELECT a FROM t1 WHERE x = $1 ORDER BY a
/// ```
pub fn normalise(statement: &str) -> String {
    let mut writer = Writer {
        out: String::with_capacity(statement.len() + statement.len() / 4),
        last: Joint::Start,
        fold: None,
    };
    for token in Lexer::new(statement) {
        writer.push(token);
    }
    writer.finish()
}

/// Whether `statement` takes values through placeholders that it does not
/// show: two byte-identical copies of it may still have had different
/// values. A statement that shows its bound values in a `-- binds: […]`
/// comment, as diesel's do, hides nothing.
pub(super) fn hides_values(statement: &str) -> bool {
    let mut placeholders = false;
    for token in Lexer::new(statement) {
        match token.class {
            Class::Placeholder => placeholders = true,
            Class::Blank if token.text.starts_with("-- binds:") => return false,
            _ => {}
        }
    }
    placeholders
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// Whitespace, a comment, or a word that changes nothing (`ASC`).
    Blank,
    /// A value that varies from call to call: written as `?`.
    Literal,
    /// `?`, `?1`, `$1`, `:name` or `@name`.
    Placeholder,
    /// The `NULL` of `IS NULL` or `NOT NULL`: not a value.
    Null,
    /// The `...` of a list folded to `(...)`: reading it as a list item
    /// folds the list again, which keeps normalising idempotent.
    Ellipsis,
    /// An identifier or a keyword.
    Word,
    /// A backquoted or double-quoted name.
    QuotedName,
    /// One character of punctuation, a run of operator characters, or `::`.
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
    /// A word (or the `NULL` of a predicate) that is one of [`KEYWORDS`].
    keyword: bool,
}

/// Cuts a statement into tokens that tile it: each token is at least one
/// character, and the lexer never steps back, so lexing is linear.
struct Lexer<'a> {
    input: &'a str,
    at: usize,
    /// Whether the last token that was not blank ends an operand (a value,
    /// a name, a `)`): a `-` or `+` after it is an operator, not a sign.
    after_operand: bool,
    /// Whether the last token that was not blank is `IS` or `NOT`: a `NULL`
    /// after it is part of a predicate or a constraint, not a value.
    after_is_or_not: bool,
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || (!c.is_ascii() && !c.is_whitespace())
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$' || (!c.is_ascii() && !c.is_whitespace())
}

/// Characters that make up operators such as `<=`, `<>`, `!=`, `||`, `@>`
/// once one of them starts the run (`@` and `#` do not start one).
fn is_operator_char(byte: u8) -> bool {
    matches!(
        byte,
        b'<' | b'>' | b'=' | b'!' | b'|' | b'&' | b'~' | b'^' | b'%' | b'#'
    )
}

/// A name that needs no quotes: ASCII letters, digits and `_`, not
/// starting with a digit, and no keyword.
fn is_plain_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !is_keyword(name)
}

impl<'a> Lexer<'a> {
    fn new(input: &'a str) -> Self {
        Lexer {
            input,
            at: 0,
            after_operand: false,
            after_is_or_not: false,
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

    fn skip_to_line_end(&mut self) {
        self.at = self
            .rest()
            .find('\n')
            .map_or(self.input.len(), |n| self.at + n);
    }

    /// What the token whose first character, `first`, was just taken is;
    /// takes the rest of it.
    fn rest_of_token(&mut self, start: usize, first: char) -> Class {
        match first {
            '-' if self.byte_at(0) == Some(b'-') => {
                self.skip_to_line_end();
                Class::Blank
            }
            '#' if self.byte_at(0).is_some_and(|b| b.is_ascii_whitespace()) => {
                self.skip_to_line_end();
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
            '\'' => {
                self.skip_quoted(b'\'', true);
                Class::Literal
            }
            '"' | '`' => {
                self.skip_quoted(first as u8, false);
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
            // `->` and `->>`, PostgreSQL's and MySQL's JSON operators.
            '-' if self.byte_at(0) == Some(b'>') => {
                self.eat_operator();
                Class::Symbol
            }
            '?' => {
                self.eat_digits();
                Class::Placeholder
            }
            '$' if self.digit_at(0) => {
                self.eat_digits();
                Class::Placeholder
            }
            '$' if self.dollar_quoted(start) => Class::Literal,
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
            c if c.is_ascii() && is_operator_char(c as u8) => {
                self.eat_operator();
                Class::Symbol
            }
            _ => Class::Symbol,
        }
    }

    fn eat_operator(&mut self) {
        while self.byte_at(0).is_some_and(is_operator_char) {
            self.at += 1;
        }
    }

    /// Takes the rest of a PostgreSQL dollar-quoted string (`$$…$$`,
    /// `$tag$…$tag$`) whose `$` at `start` was just taken, if it is one.
    /// Looking for the tag reads no further than the word that would be
    /// lexed next anyway, so lexing stays linear.
    fn dollar_quoted(&mut self, start: usize) -> bool {
        let bytes = self.input.as_bytes();
        let mut end = self.at;
        if bytes
            .get(end)
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
        {
            while bytes
                .get(end)
                .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
            {
                end += 1;
            }
        }
        if bytes.get(end) != Some(&b'$') {
            return false;
        }
        let Some(tag) = self.input.get(start..=end) else {
            return false;
        };
        let body = end + 1;
        self.at = self
            .input
            .get(body..)
            .and_then(|rest| rest.find(tag))
            .map_or(self.input.len(), |n| body + n + tag.len());
        true
    }

    fn rest_of_word(&mut self, start: usize, first: char) -> Class {
        self.eat_while(is_word_char);
        let word = self.input.get(start..self.at).unwrap_or_default();
        let is_string_prefix = word.len() == 1 && "xXbBnNeE".contains(first);
        if is_string_prefix && self.byte_at(0) == Some(b'\'') {
            self.at += 1;
            self.skip_quoted(b'\'', true);
            Class::Literal
        } else if word.eq_ignore_ascii_case("U")
            && self.byte_at(0) == Some(b'&')
            && self.byte_at(1) == Some(b'\'')
        {
            self.at += 2;
            self.skip_quoted(b'\'', true);
            Class::Literal
        } else if word.eq_ignore_ascii_case("TRUE") || word.eq_ignore_ascii_case("FALSE") {
            Class::Literal
        } else if word.eq_ignore_ascii_case("NULL") {
            if self.after_is_or_not {
                Class::Null
            } else {
                Class::Literal
            }
        } else if word.eq_ignore_ascii_case("ASC") {
            Class::Blank
        } else {
            Class::Word
        }
    }

    /// Takes the rest of a run opened by `quote`, which a doubled `quote`
    /// (and with `backslash`, a backslash and the byte after it) does not
    /// close. Unterminated, it runs to the end.
    fn skip_quoted(&mut self, quote: u8, backslash: bool) {
        let bytes = self.input.as_bytes();
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
        let keyword = matches!(class, Class::Word | Class::Null) && is_keyword(text);
        match class {
            Class::Blank => {}
            Class::Word => {
                self.after_operand = !(keyword
                    && KEYWORDS_BEFORE_OPERAND
                        .iter()
                        .any(|k| text.eq_ignore_ascii_case(k)));
                self.after_is_or_not = keyword
                    && (text.eq_ignore_ascii_case("IS") || text.eq_ignore_ascii_case("NOT"));
            }
            Class::Symbol => {
                self.after_operand = matches!(text, ")" | "]" | "}");
                self.after_is_or_not = false;
            }
            _ => {
                self.after_operand = true;
                self.after_is_or_not = false;
            }
        }
        Some(Token {
            class,
            text,
            keyword,
        })
    }
}

/// What the last token written was, as far as the space before the next
/// one goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Joint {
    /// Nothing written yet.
    Start,
    /// `(`, `[`, `.`, `::` or `...`: nothing goes after it.
    Tight,
    /// A name that may be a function or a table: a `(` after it is a call
    /// or a column list, and goes without a space.
    Name,
    /// Anything else: a space goes after it, unless the next token is one
    /// that goes without.
    Spaced,
}

/// Writes tokens out, spacing them and folding lists as it goes.
struct Writer {
    out: String,
    last: Joint,
    /// The list after an `IN` or `VALUES` being written, while it may still
    /// fold to `(...)`. Only one at a time: a list within a list (other
    /// than the tuples of an `IN`) holds a `(`, which ends the outer one's
    /// chance.
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
    /// A literal or a placeholder (or, in an `IN` list, a tuple of them).
    Item,
    /// `,` or `)`.
    Separator,
    /// In a tuple of an `IN` list: a literal or a placeholder.
    InnerItem,
    /// In a tuple of an `IN` list: `,` or `)`.
    InnerSeparator,
    /// After a tuple: a `,` and another tuple, or the end of the run.
    MoreTuples,
}

impl Writer {
    fn push(&mut self, token: Token<'_>) {
        if token.class == Class::Blank {
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
        let item = token.class.is_list_item();
        let next = match (fold.expect, token.text.as_bytes()) {
            (Expect::Open, b"(") | (Expect::Separator, b",") => Expect::Item,
            (Expect::Item, _) if item => Expect::Separator,
            (Expect::Item, b"(") if !fold.tuples => Expect::InnerItem,
            (Expect::InnerItem, _) if item => Expect::InnerSeparator,
            (Expect::InnerSeparator, b",") => Expect::InnerItem,
            (Expect::InnerSeparator, b")") => Expect::Separator,
            (Expect::Separator, b")") if fold.tuples => Expect::MoreTuples,
            (Expect::Separator, b")") => {
                self.fold_list(fold.from);
                return true;
            }
            (Expect::MoreTuples, b",") => Expect::Open,
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
        self.last = Joint::Spaced;
    }

    fn write(&mut self, token: Token<'_>) {
        let text = token.text;
        let bytes = text.as_bytes();
        let tight_before = match (token.class, bytes) {
            (Class::Ellipsis, _) => true,
            (Class::Symbol, [b',' | b';' | b')' | b']' | b'.' | b'['] | b"::") => true,
            (Class::Symbol, b"(") => self.last == Joint::Name,
            _ => false,
        };
        // `: ::` must not become `:::`, which reads as `::` and `:`.
        let glues_colons = bytes == b"::" && self.out.ends_with(':');
        if (!tight_before || glues_colons) && matches!(self.last, Joint::Name | Joint::Spaced) {
            self.out.push(' ');
        }
        let keyword = token.keyword;
        self.last = match token.class {
            Class::Ellipsis => Joint::Tight,
            Class::Symbol if matches!(bytes, b"(" | b"[" | b"." | b"::") => Joint::Tight,
            // `#` and a space would read as a comment.
            Class::Symbol if text.ends_with('#') => Joint::Tight,
            Class::Word if !keyword => Joint::Name,
            Class::QuotedName => Joint::Name,
            _ => Joint::Spaced,
        };
        match token.class {
            Class::Literal => self.out.push('?'),
            Class::Word | Class::Null => self.push_folded(text, keyword),
            Class::QuotedName => {
                let name = text
                    .get(1..text.len().saturating_sub(1))
                    .unwrap_or_default();
                let closed = text.len() >= 2 && text.get(..1).is_some_and(|q| text.ends_with(q));
                if closed && is_plain_name(name) {
                    self.push_folded(name, false);
                } else {
                    self.out.push_str(text);
                }
            }
            _ => self.out.push_str(text),
        }
    }

    /// Writes `word` in upper case (a keyword) or lower case (a name): ASCII
    /// letters only, so its length stays the same.
    fn push_folded(&mut self, word: &str, upper: bool) {
        let start = self.out.len();
        self.out.push_str(word);
        if let Some(written) = self.out.as_mut_str().get_mut(start..) {
            if upper {
                written.make_ascii_uppercase();
            } else {
                written.make_ascii_lowercase();
            }
        }
    }

    fn finish(mut self) -> String {
        if let Some(fold) = self.fold.filter(|fold| fold.expect == Expect::MoreTuples) {
            self.fold_list(fold.from);
        }
        while self.out.ends_with(';') || self.out.ends_with(' ') {
            self.out.pop();
        }
        self.out
    }
}
