//! Upstream text rendered once at build, with the places that differ per batched join item:
//! each item's alias prefix and the names of its internal variables.

/// Pre-rendered upstream text with the places that differ per batched item.
#[derive(Debug, Clone, Default)]
pub(crate) struct Template(pub Vec<Part>);

impl std::fmt::Write for Template {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

/// A part of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// Literal text.
    Text(String),
    /// An internal variable's name (after its `$`): written as `<prefix><name>`.
    Variable(String),
    /// Where the item's alias prefix goes (before a root field's response key).
    KeyPrefix,
}

impl Template {
    /// Appends literal text.
    pub(crate) fn push_str(&mut self, text: &str) {
        match self.0.last_mut() {
            Some(Part::Text(last)) => last.push_str(text),
            _ => self.0.push(Part::Text(text.to_string())),
        }
    }

    /// Appends one literal character.
    pub(crate) fn push(&mut self, c: char) {
        self.push_str(c.encode_utf8(&mut [0; 4]));
    }

    /// Marks where an item's alias prefix goes.
    pub(crate) fn key_prefix(&mut self) {
        self.0.push(Part::KeyPrefix);
    }

    /// Appends internal variable `name` (after its `$`), renamed per item.
    pub(crate) fn variable(&mut self, name: &str) {
        self.0.push(Part::Variable(name.to_string()));
    }

    /// Writes the template for one item whose aliases and variables start with `prefix`.
    pub(crate) fn write(&self, prefix: &str, out: &mut String) {
        for part in &self.0 {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Variable(v) => {
                    // The `$` is part of the preceding text.
                    out.push_str(prefix);
                    out.push_str(v);
                }
                Part::KeyPrefix => out.push_str(prefix),
            }
        }
    }
}
