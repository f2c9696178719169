//! The SQL keywords the normaliser knows, packed for a binary search.

/// Keywords after which an operand is expected, so that a `-` or `+`
/// touching a digit is a sign: `WHERE -1`, `THEN +2`. Each is in
/// [`KEYWORDS`].
pub(super) const KEYWORDS_BEFORE_OPERAND: &[&str] = &[
    "AND", "ANY", "ALL", "BETWEEN", "BY", "CASE", "DEFAULT", "DISTINCT", "DIV", "ELSE", "HAVING",
    "ILIKE", "IN", "IS", "LIKE", "LIMIT", "MOD", "NOT", "OFFSET", "ON", "OR", "RETURN", "SELECT",
    "SET", "SOME", "THEN", "VALUES", "WHEN", "WHERE",
];

/// The words written in upper case, sorted. Every word the lexer or the
/// writer treats specially is here, so that a quoted name spelling one
/// keeps its quotes and reads the same when normalised again. Words that
/// are also common column or function names (`key`, `value`, `name`,
/// `replace`, `count`) are not.
pub(super) const KEYWORDS: &[&str] = &[
    "ALL",
    "ALTER",
    "AND",
    "ANY",
    "AS",
    "ASC",
    "BEGIN",
    "BETWEEN",
    "BY",
    "CALL",
    "CASE",
    "COMMIT",
    "CONFLICT",
    "CREATE",
    "CROSS",
    "DEFAULT",
    "DELETE",
    "DESC",
    "DISTINCT",
    "DIV",
    "DO",
    "DROP",
    "ELSE",
    "END",
    "EXCEPT",
    "EXISTS",
    "FALSE",
    "FETCH",
    "FOR",
    "FROM",
    "FULL",
    "GROUP",
    "HAVING",
    "ILIKE",
    "IN",
    "INNER",
    "INSERT",
    "INTERSECT",
    "INTO",
    "IS",
    "JOIN",
    "LEFT",
    "LIKE",
    "LIMIT",
    "MOD",
    "NATURAL",
    "NOT",
    "NULL",
    "NULLS",
    "OFFSET",
    "ON",
    "OR",
    "ORDER",
    "OUTER",
    "OVER",
    "PARTITION",
    "RECURSIVE",
    "RETURN",
    "RETURNING",
    "RIGHT",
    "ROLLBACK",
    "SAVEPOINT",
    "SELECT",
    "SET",
    "SOME",
    "TABLE",
    "THEN",
    "TRUE",
    "TRUNCATE",
    "UNION",
    "UPDATE",
    "USING",
    "VALUES",
    "WHEN",
    "WHERE",
    "WITH",
];

/// Up to 16 bytes as one number, big-endian and padded with zeros: numbers
/// compare as the words do, so a sorted list of words gives a sorted list
/// of numbers, searched without a `memcmp` per step.
const fn pack(word: &[u8]) -> u128 {
    let mut packed = 0u128;
    let mut at = 0;
    while at < 16 {
        packed <<= 8;
        if at < word.len() {
            packed |= word[at].to_ascii_uppercase() as u128;
        }
        at += 1;
    }
    packed
}

/// [`KEYWORDS`], packed.
const PACKED_KEYWORDS: [u128; KEYWORDS.len()] = {
    let mut packed = [0u128; KEYWORDS.len()];
    let mut at = 0;
    while at < KEYWORDS.len() {
        packed[at] = pack(KEYWORDS[at].as_bytes());
        at += 1;
    }
    packed
};

/// The length of the longest of [`KEYWORDS`]: no longer word is one.
pub(super) const LONGEST_KEYWORD: usize = {
    let mut longest = 0;
    let mut at = 0;
    while at < KEYWORDS.len() {
        if KEYWORDS[at].len() > longest {
            longest = KEYWORDS[at].len();
        }
        at += 1;
    }
    longest
};

/// Whether `word` is one of [`KEYWORDS`], in any case.
pub(super) fn is_keyword(word: &str) -> bool {
    if !(2..=LONGEST_KEYWORD).contains(&word.len()) {
        return false;
    }
    let mut buffer = [0u8; 16];
    let Some(start) = buffer.get_mut(..word.len()) else {
        return false;
    };
    start.copy_from_slice(word.as_bytes());
    buffer.make_ascii_uppercase();
    PACKED_KEYWORDS
        .binary_search(&u128::from_be_bytes(buffer))
        .is_ok()
}
