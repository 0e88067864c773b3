//! A small writer of commented YAML: the importers build a tree of maps, lists and scalars with
//! comments attached to keys, and this module renders it in block style. serde's YAML
//! serializers cannot write comments, and the comments are what make an imported config
//! reviewable.

use std::fmt::Write as _;

/// A YAML value.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Already rendered scalar text (plain or double-quoted).
    Scalar(String),
    Map(Map),
    List(Vec<Node>),
}

impl Node {
    /// A string, plain when that reads back as the same string, else double-quoted.
    pub fn str(s: impl AsRef<str>) -> Node {
        let s = s.as_ref();
        if is_plain_safe(s) {
            Node::Scalar(s.to_owned())
        } else {
            Node::Scalar(serde_json::Value::String(s.to_owned()).to_string())
        }
    }

    pub fn num(n: impl std::fmt::Display) -> Node {
        Node::Scalar(n.to_string())
    }

    pub fn bool(b: bool) -> Node {
        Node::Scalar(b.to_string())
    }

    /// A list of strings.
    pub fn strs<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Node {
        Node::List(items.into_iter().map(Node::str).collect())
    }
}

impl From<Map> for Node {
    fn from(m: Map) -> Node {
        Node::Map(m)
    }
}

/// A mapping whose entries keep their insertion order and may carry comments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Map {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    key: String,
    node: Node,
    comment: Vec<String>,
}

impl Map {
    pub fn new() -> Map {
        Map::default()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.iter().any(|e| e.key == key)
    }

    /// Sets `key`, replacing an earlier value (and keeping its place and comment).
    pub fn put(&mut self, key: impl Into<String>, node: impl Into<Node>) -> &mut Map {
        let key = key.into();
        let node = node.into();
        match self.entries.iter_mut().find(|e| e.key == key) {
            Some(e) => e.node = node,
            None => self.entries.push(Entry {
                key,
                node,
                comment: Vec::new(),
            }),
        }
        self
    }

    /// Sets `key` with a comment written above it.
    pub fn put_noted(
        &mut self,
        key: impl Into<String>,
        node: impl Into<Node>,
        comment: impl Into<String>,
    ) -> &mut Map {
        let key = key.into();
        self.put(key.clone(), node);
        self.note(&key, comment);
        self
    }

    /// Adds a comment line above an existing key.
    pub fn note(&mut self, key: &str, comment: impl Into<String>) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.key == key) {
            e.comment.push(comment.into());
        }
    }

    /// The map under `key`, created empty if missing.
    pub fn map_mut(&mut self, key: &str) -> &mut Map {
        if !matches!(self.get(key), Some(Node::Map(_))) {
            self.put(key, Map::new());
        }
        match self.entries.iter_mut().find(|e| e.key == key) {
            Some(Entry {
                node: Node::Map(m), ..
            }) => m,
            _ => unreachable!("the entry was just made a map"),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.node)
    }
}

/// Renders a document: `header` lines as comments, then the top-level map with a blank line
/// between its sections.
pub fn render(header: &[String], top: &Map) -> String {
    let mut out = String::new();
    for line in header {
        comment_lines(&mut out, 0, line);
    }
    for entry in &top.entries {
        out.push('\n');
        write_entry(&mut out, 0, entry);
    }
    out
}

fn write_entry(out: &mut String, indent: usize, e: &Entry) {
    for c in &e.comment {
        comment_lines(out, indent, c);
    }
    let pad = " ".repeat(indent);
    let key = render_key(&e.key);
    match &e.node {
        Node::Scalar(s) => {
            let _ = writeln!(out, "{pad}{key}: {s}");
        }
        Node::Map(m) if m.entries.is_empty() => {
            let _ = writeln!(out, "{pad}{key}: {{}}");
        }
        Node::Map(m) => {
            let _ = writeln!(out, "{pad}{key}:");
            write_map(out, indent + 2, m);
        }
        Node::List(items) if items.iter().all(|n| matches!(n, Node::Scalar(_))) => {
            let flow: Vec<&str> = items
                .iter()
                .filter_map(|n| match n {
                    Node::Scalar(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect();
            let _ = writeln!(out, "{pad}{key}: [{}]", flow.join(", "));
        }
        Node::List(items) => {
            let _ = writeln!(out, "{pad}{key}:");
            write_list(out, indent + 2, items);
        }
    }
}

fn write_map(out: &mut String, indent: usize, m: &Map) {
    for e in &m.entries {
        write_entry(out, indent, e);
    }
}

fn write_list(out: &mut String, indent: usize, items: &[Node]) {
    let pad = " ".repeat(indent);
    for item in items {
        match item {
            Node::Scalar(s) => {
                let _ = writeln!(out, "{pad}- {s}");
            }
            Node::Map(m) if !m.entries.is_empty() => {
                // Each item's map is written at indent + 2 with its comments before the dash,
                // so that the dash always opens a key line.
                let mut body = String::new();
                write_map(&mut body, indent + 2, m);
                let (comments, rest): (Vec<&str>, Vec<&str>) = {
                    let lines: Vec<&str> = body.lines().collect();
                    let n = lines
                        .iter()
                        .take_while(|l| l.trim_start().starts_with('#'))
                        .count();
                    (lines[..n].to_vec(), lines[n..].to_vec())
                };
                for c in comments {
                    let _ = writeln!(out, "{pad}{}", c.trim_start());
                }
                for (i, line) in rest.iter().enumerate() {
                    if i == 0 {
                        let _ = writeln!(out, "{pad}- {}", &line[indent + 2..]);
                    } else {
                        let _ = writeln!(out, "{line}");
                    }
                }
            }
            Node::Map(_) => {
                let _ = writeln!(out, "{pad}- {{}}");
            }
            Node::List(inner) => {
                let mut body = String::new();
                write_list(&mut body, indent + 2, inner);
                let _ = writeln!(out, "{pad}-");
                out.push_str(&body);
            }
        }
    }
}

fn comment_lines(out: &mut String, indent: usize, text: &str) {
    let pad = " ".repeat(indent);
    for line in text.lines() {
        if line.is_empty() {
            let _ = writeln!(out, "{pad}#");
        } else {
            let _ = writeln!(out, "{pad}# {line}");
        }
    }
}

fn render_key(key: &str) -> String {
    if is_plain_safe(key) {
        key.to_owned()
    } else {
        serde_json::Value::String(key.to_owned()).to_string()
    }
}

/// Whether `s` written plain reads back as the same string (not a number, bool, null, or
/// something YAML gives a meaning to).
fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '@');
    let reserved = matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n" | "~"
    );
    first.is_ascii_alphabetic() && s.chars().all(allowed) && !reserved && s.parse::<f64>().is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_comments_maps_and_lists_that_read_back() {
        let mut top = Map::new();
        let mut route = Map::new();
        route.put("strategy", Node::str("weighted"));
        let mut t1 = Map::new();
        t1.put_noted("model", Node::str("gpt-4o-azure"), "from rpm");
        t1.put("weight", Node::num(3));
        route.put("targets", Node::List(vec![t1.into(), Node::str("x")]));
        top.map_mut("routes")
            .put_noted("gpt-4o", route, "three deployments");
        top.put("keys", Node::strs(["${KEY}", "true", "plain"]));
        let text = render(&["imported".into()], &top);
        let back: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(
            back["routes"]["gpt-4o"]["targets"][0]["weight"], 3,
            "{text}"
        );
        assert_eq!(back["routes"]["gpt-4o"]["targets"][1], "x", "{text}");
        assert_eq!(back["keys"][0], "${KEY}");
        assert_eq!(back["keys"][1], "true");
        assert!(text.contains("# three deployments"), "{text}");
    }
}
