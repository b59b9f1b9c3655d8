//! `AnyValue`: a JSON value as Go's `encoding/json` decodes it into `any`.
//!
//! Numbers are `float64`, objects are maps (duplicate keys: last wins; iteration sorted by key bytes,
//! the order Go's encoder and `fmt` print them in). The value is stored as a flat list of nodes rather
//! than a recursive enum: a request may nest 10 000 levels deep (Go's limit), and recursive drop,
//! clone, compare or print of such a tree overflows a 2 MiB thread stack. Every operation here is a
//! loop over the node list.

use std::collections::BTreeMap;

/// One node of the flat tree. Containers refer to their children by index into `AnyValue::nodes`.
#[derive(Debug, Clone)]
enum Node {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<u32>),
    /// Sorted by key, keys unique.
    Object(Vec<(String, u32)>),
}

/// A decoded JSON value with Go `any` semantics. Build one with the `From` impls, [`AnyValue::array`]
/// and [`AnyValue::object`]; read it through [`AnyValue::view`].
#[derive(Clone)]
pub struct AnyValue {
    /// Root at index 0. Never empty.
    nodes: Vec<Node>,
}

/// A borrowed view of one node of an [`AnyValue`].
#[derive(Debug, Clone, Copy)]
pub enum ValueRef<'a> {
    Null,
    Bool(bool),
    Number(f64),
    String(&'a str),
    Array(ArrayRef<'a>),
    Object(ObjectRef<'a>),
}

/// A borrowed array inside an [`AnyValue`].
#[derive(Debug, Clone, Copy)]
pub struct ArrayRef<'a> {
    nodes: &'a [Node],
    items: &'a [u32],
}

/// A borrowed object inside an [`AnyValue`]; entries are sorted by key.
#[derive(Debug, Clone, Copy)]
pub struct ObjectRef<'a> {
    nodes: &'a [Node],
    entries: &'a [(String, u32)],
}

impl AnyValue {
    /// JSON `null` (Go `nil`).
    pub fn null() -> Self {
        AnyValue {
            nodes: vec![Node::Null],
        }
    }

    /// An array of the given values.
    pub fn array(items: impl IntoIterator<Item = AnyValue>) -> Self {
        let mut b = Builder::default();
        let root = b.reserve();
        let ids: Vec<u32> = items.into_iter().map(|v| b.graft(v)).collect();
        b.set(root, Node::Array(ids));
        b.finish()
    }

    /// An object of the given entries; a repeated key keeps the last value, as Go's map decoding does.
    pub fn object<K: Into<String>>(entries: impl IntoIterator<Item = (K, AnyValue)>) -> Self {
        let mut b = Builder::default();
        let root = b.reserve();
        let mut map = BTreeMap::new();
        for (k, v) in entries {
            map.insert(k.into(), b.graft(v));
        }
        b.set(root, Node::Object(map.into_iter().collect()));
        b.finish()
    }

    /// The root as a borrowed view.
    pub fn view(&self) -> ValueRef<'_> {
        view_at(&self.nodes, 0)
    }

    /// The string value, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self.view() {
            ValueRef::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number value, if this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self.view() {
            ValueRef::Number(n) => Some(n),
            _ => None,
        }
    }

    /// The boolean value, if this is a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self.view() {
            ValueRef::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self.view(), ValueRef::Null)
    }

    /// Converts a `serde_json::Value`. Numbers become `f64` as Go would decode them.
    /// Recursive in the depth of `value`, which serde_json's own parser caps at 128.
    pub fn from_serde(value: &serde_json::Value) -> Self {
        match value {
            serde_json::Value::Null => AnyValue::null(),
            serde_json::Value::Bool(b) => AnyValue::from(*b),
            serde_json::Value::Number(n) => AnyValue::from(n.as_f64().unwrap_or(0.0)),
            serde_json::Value::String(s) => AnyValue::from(s.as_str()),
            serde_json::Value::Array(a) => AnyValue::array(a.iter().map(AnyValue::from_serde)),
            serde_json::Value::Object(m) => {
                AnyValue::object(m.iter().map(|(k, v)| (k.clone(), AnyValue::from_serde(v))))
            }
        }
    }
}

impl From<bool> for AnyValue {
    fn from(b: bool) -> Self {
        AnyValue {
            nodes: vec![Node::Bool(b)],
        }
    }
}

impl From<f64> for AnyValue {
    fn from(n: f64) -> Self {
        AnyValue {
            nodes: vec![Node::Number(n)],
        }
    }
}

impl From<i64> for AnyValue {
    /// Go stores every JSON number in `any` as `float64`; large integers lose precision exactly as there.
    fn from(n: i64) -> Self {
        AnyValue::from(n as f64)
    }
}

impl From<&str> for AnyValue {
    fn from(s: &str) -> Self {
        AnyValue {
            nodes: vec![Node::String(s.to_owned())],
        }
    }
}

impl From<String> for AnyValue {
    fn from(s: String) -> Self {
        AnyValue {
            nodes: vec![Node::String(s)],
        }
    }
}

/// Semantic equality: same Go-encoded JSON (so `0` and `-0` differ, as their encodings do).
impl PartialEq for AnyValue {
    fn eq(&self, other: &Self) -> bool {
        super::gowrite::encode_any(self) == super::gowrite::encode_any(other)
    }
}

impl std::fmt::Debug for AnyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&super::gowrite::encode_any(self))
    }
}

fn view_at(nodes: &[Node], idx: u32) -> ValueRef<'_> {
    match &nodes[idx as usize] {
        Node::Null => ValueRef::Null,
        Node::Bool(b) => ValueRef::Bool(*b),
        Node::Number(n) => ValueRef::Number(*n),
        Node::String(s) => ValueRef::String(s),
        Node::Array(items) => ValueRef::Array(ArrayRef { nodes, items }),
        Node::Object(entries) => ValueRef::Object(ObjectRef { nodes, entries }),
    }
}

impl<'a> ArrayRef<'a> {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = ValueRef<'a>> + 'a {
        let nodes = self.nodes;
        self.items.iter().map(move |&i| view_at(nodes, i))
    }
}

impl<'a> ObjectRef<'a> {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<ValueRef<'a>> {
        let i = self
            .entries
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()?;
        Some(view_at(self.nodes, self.entries[i].1))
    }

    /// Entries in key order (byte-wise, as Go sorts map keys).
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, ValueRef<'a>)> + 'a {
        let nodes = self.nodes;
        self.entries
            .iter()
            .map(move |(k, i)| (k.as_str(), view_at(nodes, *i)))
    }
}

/// Incremental construction of a flat tree, used by the decoder and the constructors above.
#[derive(Debug, Default)]
pub(crate) struct Builder {
    nodes: Vec<Node>,
}

/// A container being filled by [`Builder`] users.
#[derive(Debug)]
pub(crate) enum Open {
    Array(u32, Vec<u32>),
    Object(u32, BTreeMap<String, u32>),
}

impl Builder {
    pub(crate) fn reserve(&mut self) -> u32 {
        self.push(Node::Null)
    }

    fn push(&mut self, node: Node) -> u32 {
        // A body is at most a few MiB, so node counts stay far below u32::MAX.
        let id = self.nodes.len() as u32;
        self.nodes.push(node);
        id
    }

    fn set(&mut self, id: u32, node: Node) {
        self.nodes[id as usize] = node;
    }

    pub(crate) fn null(&mut self) -> u32 {
        self.push(Node::Null)
    }

    pub(crate) fn bool(&mut self, b: bool) -> u32 {
        self.push(Node::Bool(b))
    }

    pub(crate) fn number(&mut self, n: f64) -> u32 {
        self.push(Node::Number(n))
    }

    pub(crate) fn string(&mut self, s: String) -> u32 {
        self.push(Node::String(s))
    }

    pub(crate) fn close(&mut self, open: Open) -> u32 {
        match open {
            Open::Array(id, items) => {
                self.set(id, Node::Array(items));
                id
            }
            Open::Object(id, map) => {
                self.set(id, Node::Object(map.into_iter().collect()));
                id
            }
        }
    }

    /// Appends another tree's nodes, returning the new index of its root.
    fn graft(&mut self, v: AnyValue) -> u32 {
        let offset = self.nodes.len() as u32;
        for node in v.nodes.into_iter() {
            let node = match node {
                Node::Array(items) => Node::Array(items.into_iter().map(|i| i + offset).collect()),
                Node::Object(e) => {
                    Node::Object(e.into_iter().map(|(k, i)| (k, i + offset)).collect())
                }
                other => other,
            };
            self.nodes.push(node);
        }
        offset
    }

    /// The tree rooted at node 0.
    pub(crate) fn finish(self) -> AnyValue {
        debug_assert!(!self.nodes.is_empty());
        if self.nodes.is_empty() {
            return AnyValue::null();
        }
        AnyValue { nodes: self.nodes }
    }
}

/// A node seen while walking a tree in document order (see [`walk`]).
#[derive(Debug)]
pub(crate) enum Step<'a> {
    Scalar(ValueRef<'a>),
    /// A key inside an object, before its value.
    Key(&'a str),
    BeginArray,
    EndArray,
    BeginObject,
    EndObject,
    /// Between two elements of a container.
    Separator,
}

/// Visits a tree in document order without recursion.
pub(crate) fn walk<'a>(value: &'a AnyValue, mut visit: impl FnMut(Step<'a>)) {
    enum Frame<'a> {
        Array(std::slice::Iter<'a, u32>, bool),
        Object(std::slice::Iter<'a, (String, u32)>, bool),
    }
    let nodes = &value.nodes;
    let mut stack: Vec<Frame<'a>> = Vec::new();
    let mut next: Option<u32> = Some(0);
    loop {
        if let Some(idx) = next.take() {
            match &nodes[idx as usize] {
                Node::Array(items) => {
                    visit(Step::BeginArray);
                    stack.push(Frame::Array(items.iter(), true));
                }
                Node::Object(entries) => {
                    visit(Step::BeginObject);
                    stack.push(Frame::Object(entries.iter(), true));
                }
                _ => visit(Step::Scalar(view_at(nodes, idx))),
            }
        }
        let Some(top) = stack.last_mut() else { return };
        match top {
            Frame::Array(it, first) => match it.next() {
                Some(&i) => {
                    if !*first {
                        visit(Step::Separator);
                    }
                    *first = false;
                    next = Some(i);
                }
                None => {
                    stack.pop();
                    visit(Step::EndArray);
                }
            },
            Frame::Object(it, first) => match it.next() {
                Some((k, i)) => {
                    if !*first {
                        visit(Step::Separator);
                    }
                    *first = false;
                    visit(Step::Key(k));
                    next = Some(*i);
                }
                None => {
                    stack.pop();
                    visit(Step::EndObject);
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keeps_last_duplicate_and_sorts_keys() {
        let v = AnyValue::object([
            ("b", AnyValue::from(1.0)),
            ("a", AnyValue::from("x")),
            ("b", AnyValue::from(2.0)),
        ]);
        let ValueRef::Object(o) = v.view() else {
            panic!("not an object")
        };
        let keys: Vec<&str> = o.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "b"]);
        assert!(matches!(o.get("b"), Some(ValueRef::Number(n)) if n == 2.0));
        assert!(o.get("c").is_none());
    }

    #[test]
    fn nested_graft_keeps_structure() {
        let inner = AnyValue::array([AnyValue::from(true), AnyValue::null()]);
        let v = AnyValue::object([("k", inner.clone())]);
        let ValueRef::Object(o) = v.view() else {
            panic!("not an object")
        };
        let Some(ValueRef::Array(a)) = o.get("k") else {
            panic!("not an array")
        };
        assert_eq!(a.len(), 2);
        assert!(matches!(a.iter().next(), Some(ValueRef::Bool(true))));
        assert_eq!(AnyValue::object([("k", inner)]), v);
    }
}
