//! The parsed form of a SOQL statement. Every name keeps the byte offset it
//! was written at so execution-time errors (unknown field, type mismatch)
//! can point at it.

use chrono::{DateTime, FixedOffset, NaiveDate};

/// A parsed SOQL query, ready for [`super::execute`].
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The original statement (error messages quote it).
    pub(crate) text: String,
    pub(crate) select: Select,
}

impl Query {
    /// The statement as given to [`super::parse`].
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The `FROM` object as written (not yet checked against the schema).
    pub fn from_object(&self) -> &str {
        &self.select.from.name
    }
}

/// A name as written, with its byte offset in the statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Name {
    pub name: String,
    pub offset: usize,
}

/// A dotted field path: `Subject`, `Contact.Email`, `Parent.Contact.Email`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Path {
    pub segments: Vec<Name>,
}

impl Path {
    pub fn offset(&self) -> usize {
        self.segments[0].offset
    }

    /// The path as written, dot-joined.
    pub fn written(&self) -> String {
        self.segments
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// One `SELECT` (top level or a child sub-query).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Select {
    pub items: Vec<SelectItem>,
    pub from: Name,
    pub filter: Option<Cond>,
    pub order_by: Vec<OrderItem>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SelectItem {
    Field(Path),
    /// `COUNT()`: only the row count, no records.
    CountRows,
    /// `COUNT(field) [alias]`: one AggregateResult row.
    CountField {
        path: Path,
        alias: Option<Name>,
    },
    /// `(SELECT … FROM ChildRelationship …)`.
    SubQuery(Box<Select>),
    /// `FIELDS(ALL|STANDARD|CUSTOM)`, expanded against the schema before execution.
    Fields {
        which: FieldSet,
        offset: usize,
    },
}

/// The argument of `FIELDS(…)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldSet {
    All,
    Standard,
    Custom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

/// A `WHERE` condition tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    Cmp {
        path: Path,
        op: CmpOp,
        value: Literal,
    },
    In {
        path: Path,
        negated: bool,
        values: Vec<Literal>,
    },
    Like {
        path: Path,
        pattern: Literal,
    },
}

/// A literal with its byte offset.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Literal {
    pub value: Value,
    pub offset: usize,
    pub raw: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Str(StrLit),
    Number(f64),
    Bool(bool),
    Null,
    Date(NaiveDate),
    DateTime(DateTime<FixedOffset>),
    Relative(RelativeDate),
}

/// Date literals relative to the current day (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RelativeDate {
    Today,
    Yesterday,
    Tomorrow,
    LastNDays(u32),
    NextNDays(u32),
}

/// A decoded string literal. `\%` and `\_` stay distinguishable from the
/// wildcards `%` and `_` so LIKE can honour them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StrLit {
    pub chars: Vec<PatChar>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatChar {
    Lit(char),
    /// `\%` or `\_`: a literal `%`/`_`, only meaningful inside LIKE.
    Escaped(char),
}

impl StrLit {
    /// The value for non-LIKE use; `None` when it holds `\%`/`\_`.
    pub fn plain(&self) -> Option<String> {
        self.chars
            .iter()
            .map(|c| match c {
                PatChar::Lit(ch) => Some(*ch),
                PatChar::Escaped(_) => None,
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderItem {
    pub path: Path,
    pub descending: bool,
    /// `None` when NULLS FIRST/LAST was not written (Salesforce: nulls first).
    pub nulls_last: Option<bool>,
}
