//! Placeholder until the normaliser lands.
pub(crate) fn normalise(statement: &str) -> String {
    statement.to_owned()
}
