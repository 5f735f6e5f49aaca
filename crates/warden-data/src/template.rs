//! `{field}` templates for record texts and ids.

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    Lit(String),
    Field(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template {
    pub parts: Vec<Part>,
}

impl Template {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(format!("unclosed '{{' in template {s:?}")),
                        }
                    }
                    if name.is_empty() {
                        return Err(format!("empty field name in template {s:?}"));
                    }
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Field(name));
                }
                '}' => return Err(format!("unmatched '}}' in template {s:?} (write '}}}}')")),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template { parts })
    }

    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field(f) => Some(f.as_str()),
            Part::Lit(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_escapes() {
        let t = Template::parse("{title}\n\n{selftext} {{x}}").unwrap();
        assert_eq!(
            t.parts,
            vec![
                Part::Field("title".into()),
                Part::Lit("\n\n".into()),
                Part::Field("selftext".into()),
                Part::Lit(" {x}".into()),
            ]
        );
        assert!(Template::parse("{oops").is_err());
        assert!(Template::parse("a}b").is_err());
    }
}
