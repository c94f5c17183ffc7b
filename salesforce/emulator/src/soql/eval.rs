//! Executes a parsed query against a [`DataSource`]: resolves names against
//! the schema (so errors surface even on empty objects), filters, sorts,
//! pages and renders records in the REST shape.

use std::cmp::Ordering;
use std::collections::HashMap;

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use serde_json::{Map, Value as Json, json};

use super::ast::{
    CmpOp, Cond, Literal, PatChar, Path, Query, RelativeDate, Select, SelectItem, Value,
};
use super::error::SoqlError;
use super::id_key;
use crate::schema::{ChildRel, DataSource, FieldDef, FieldKind, ObjectDef, Record, Schema};

/// What a query returns: `totalSize` and the rendered records (not yet paged).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOutput {
    pub total_size: usize,
    pub records: Vec<Json>,
}

pub(crate) fn run(
    query: &Query,
    db: &dyn DataSource,
    api_version: &str,
) -> Result<QueryOutput, SoqlError> {
    let ctx = Ctx {
        text: &query.text,
        schema: db.schema(),
        db,
        version: if api_version.starts_with('v') {
            api_version.to_string()
        } else {
            format!("v{api_version}")
        },
    };
    let select = &query.select;
    let object = ctx.schema.object(&select.from.name).ok_or_else(|| {
        SoqlError::invalid_type(
            ctx.text,
            select.from.offset,
            format!("sObject type '{}' is not supported.", select.from.name),
        )
    })?;
    let plan = ctx.compile(select, object)?;
    let records = ctx.db.records(&object.name);

    if plan
        .items
        .iter()
        .any(|i| matches!(i, PlanItem::CountField { .. }))
    {
        // Aggregates see every matching row; LIMIT/OFFSET page the single result row.
        let all = ctx.filtered(&plan, records);
        let mut row = Map::new();
        row.insert("attributes".into(), json!({"type": "AggregateResult"}));
        for item in &plan.items {
            if let PlanItem::CountField { field, key } = item {
                let n = all.iter().filter(|r| ctx.get(r, field).is_some()).count();
                row.insert(key.clone(), json!(n));
            }
        }
        let records: Vec<Json> = std::iter::once(Json::Object(row))
            .skip(plan.offset.unwrap_or(0))
            .take(plan.limit.unwrap_or(usize::MAX))
            .collect();
        return Ok(QueryOutput {
            total_size: records.len(),
            records,
        });
    }

    let rows = ctx.rows(&plan, records);
    if plan.items.iter().any(|i| matches!(i, PlanItem::CountRows)) {
        return Ok(QueryOutput {
            total_size: rows.len(),
            records: Vec::new(),
        });
    }

    let mut children = ChildIndex::default();
    let records: Vec<Json> = rows
        .iter()
        .map(|r| ctx.render(&plan, r, &mut children))
        .collect();
    Ok(QueryOutput {
        total_size: records.len(),
        records,
    })
}

struct Ctx<'a> {
    text: &'a str,
    schema: &'a Schema,
    db: &'a dyn DataSource,
    version: String,
}

/// A field path resolved against the schema.
#[derive(Debug)]
struct Resolved<'a> {
    /// Relationship hops: the reference field and the object it points at.
    hops: Vec<(&'a FieldDef, &'a ObjectDef)>,
    field: &'a FieldDef,
}

impl Resolved<'_> {
    /// Canonical dotted path, for duplicate detection.
    fn canonical(&self) -> String {
        let mut parts: Vec<&str> = self
            .hops
            .iter()
            .map(|(f, _)| f.relationship_name.as_deref().unwrap_or(&f.name))
            .collect();
        parts.push(&self.field.name);
        parts.join(".").to_ascii_lowercase()
    }
}

enum PlanItem<'a> {
    Field(Resolved<'a>),
    CountRows,
    CountField {
        field: Resolved<'a>,
        key: String,
    },
    Sub {
        rel: &'a ChildRel,
        plan: Box<Plan<'a>>,
    },
}

struct OrderKey<'a> {
    field: Resolved<'a>,
    descending: bool,
    nulls_last: bool,
}

struct Plan<'a> {
    object: &'a ObjectDef,
    items: Vec<PlanItem<'a>>,
    filter: Option<Pred<'a>>,
    order: Vec<OrderKey<'a>>,
    limit: Option<usize>,
    offset: Option<usize>,
}

/// A condition with resolved fields and literals converted to the field's type.
enum Pred<'a> {
    And(Box<Pred<'a>>, Box<Pred<'a>>),
    Or(Box<Pred<'a>>, Box<Pred<'a>>),
    Not(Box<Pred<'a>>),
    Cmp {
        field: Resolved<'a>,
        op: CmpOp,
        value: Typed,
    },
    In {
        field: Resolved<'a>,
        negated: bool,
        values: Vec<Typed>,
    },
    Like {
        field: Resolved<'a>,
        pattern: Vec<PatChar>,
    },
}

/// A comparable value: either from a record (converted by field kind) or a literal.
#[derive(Debug, Clone, PartialEq)]
enum Typed {
    Null,
    /// Lower-cased text (SOQL text comparison is case-insensitive).
    Str(String),
    /// An Id in its lower-cased 18-character form.
    Id(String),
    Num(f64),
    Bool(bool),
    Instant(DateTime<Utc>),
    Date(NaiveDate),
    /// A relative date literal on a date-time field: `[start, end)`.
    InstantRange(DateTime<Utc>, DateTime<Utc>),
    /// A relative date literal on a date field: `[start, end)`.
    DateRange(NaiveDate, NaiveDate),
}

const TYPE_SUFFIX_FIELD: &str = "If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.";
const TYPE_SUFFIX_REL: &str = "If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.";

fn is_text(kind: FieldKind) -> bool {
    matches!(
        kind,
        FieldKind::String
            | FieldKind::Textarea
            | FieldKind::Email
            | FieldKind::Phone
            | FieldKind::Picklist
    )
}

/// Long text areas (over 255 characters) can be neither filtered nor sorted.
fn is_long_text(field: &FieldDef) -> bool {
    field.kind == FieldKind::Textarea && field.length.is_none_or(|l| l > 255)
}

impl<'a> Ctx<'a> {
    fn resolve(&self, object: &'a ObjectDef, path: &Path) -> Result<Resolved<'a>, SoqlError> {
        let mut segments = path.segments.as_slice();
        // `Case.Subject` FROM Case: the object's own name may prefix a path.
        if segments.len() > 1
            && segments[0].name.eq_ignore_ascii_case(&object.name)
            && object.parent_relationship(&segments[0].name).is_none()
        {
            segments = &segments[1..];
        }
        let (last, rels) = segments.split_last().expect("paths are never empty");
        let mut current = object;
        let mut hops = Vec::new();
        for seg in rels {
            let target = current
                .parent_relationship(&seg.name)
                .and_then(|f| Some((f, self.schema.object(f.reference_to.as_deref()?)?)));
            let Some((field, target)) = target else {
                return Err(SoqlError::invalid_field(
                    self.text,
                    seg.offset,
                    format!(
                        "Didn't understand relationship '{}' in field path. {TYPE_SUFFIX_REL}",
                        seg.name
                    ),
                ));
            };
            hops.push((field, target));
            current = target;
        }
        let field = current.field(&last.name).ok_or_else(|| {
            SoqlError::invalid_field(
                self.text,
                last.offset,
                format!(
                    "No such column '{}' on entity '{}'. {TYPE_SUFFIX_FIELD}",
                    last.name, current.name
                ),
            )
        })?;
        Ok(Resolved { hops, field })
    }

    fn compile(&self, select: &Select, object: &'a ObjectDef) -> Result<Plan<'a>, SoqlError> {
        let expanded;
        let select = if super::fields::uses_fields(select) {
            expanded = super::fields::expand(self.text, select, object)?;
            &expanded
        } else {
            select
        };
        let mut items = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        let mut expr_n = 0;
        for item in &select.items {
            let planned = match item {
                SelectItem::Field(path) => {
                    let resolved = self.resolve(object, path)?;
                    let key = resolved.canonical();
                    if seen.contains(&key) {
                        return Err(SoqlError::malformed(
                            self.text,
                            path.offset(),
                            format!("duplicate field selected: {}", path.written()),
                        ));
                    }
                    seen.push(key);
                    PlanItem::Field(resolved)
                }
                SelectItem::CountRows => PlanItem::CountRows,
                // `expand` above replaced every FIELDS(…) with plain fields.
                SelectItem::Fields { .. } => continue,
                SelectItem::CountField { path, alias, .. } => {
                    let field = self.resolve(object, path)?;
                    let key = match alias {
                        Some(a) => a.name.clone(),
                        None => {
                            expr_n += 1;
                            format!("expr{}", expr_n - 1)
                        }
                    };
                    PlanItem::CountField { field, key }
                }
                SelectItem::SubQuery(sub) => {
                    let rel = object.child(&sub.from.name).ok_or_else(|| {
                        SoqlError::invalid_type(
                            self.text,
                            sub.from.offset,
                            format!(
                                "Didn't understand relationship '{}' in FROM part of query call. {TYPE_SUFFIX_REL}",
                                sub.from.name
                            ),
                        )
                    })?;
                    let child = self.schema.object(&rel.child_object).ok_or_else(|| {
                        SoqlError::invalid_type(
                            self.text,
                            sub.from.offset,
                            format!("sObject type '{}' is not supported.", rel.child_object),
                        )
                    })?;
                    let key = rel.name.to_ascii_lowercase();
                    if seen.contains(&key) {
                        return Err(SoqlError::malformed(
                            self.text,
                            sub.from.offset,
                            format!("duplicate field selected: {}", sub.from.name),
                        ));
                    }
                    seen.push(key);
                    PlanItem::Sub {
                        rel,
                        plan: Box::new(self.compile(sub, child)?),
                    }
                }
            };
            items.push(planned);
        }
        let filter = select
            .filter
            .as_ref()
            .map(|c| self.pred(object, c))
            .transpose()?;
        let mut order = Vec::new();
        for o in &select.order_by {
            let field = self.resolve(object, &o.path)?;
            if is_long_text(field.field) {
                return Err(SoqlError::invalid_field(
                    self.text,
                    o.path.offset(),
                    format!(
                        "field '{}' can not be sorted in a query call",
                        field.field.name
                    ),
                ));
            }
            order.push(OrderKey {
                field,
                descending: o.descending,
                nulls_last: o.nulls_last.unwrap_or(false),
            });
        }
        Ok(Plan {
            object,
            items,
            filter,
            order,
            limit: select.limit,
            offset: select.offset,
        })
    }

    fn filterable(&self, object: &'a ObjectDef, path: &Path) -> Result<Resolved<'a>, SoqlError> {
        let field = self.resolve(object, path)?;
        if is_long_text(field.field) {
            return Err(SoqlError::invalid_field(
                self.text,
                path.offset(),
                format!(
                    "field '{}' can not be filtered in a query call",
                    field.field.name
                ),
            ));
        }
        Ok(field)
    }

    fn pred(&self, object: &'a ObjectDef, cond: &Cond) -> Result<Pred<'a>, SoqlError> {
        Ok(match cond {
            Cond::And(a, b) => Pred::And(
                Box::new(self.pred(object, a)?),
                Box::new(self.pred(object, b)?),
            ),
            Cond::Or(a, b) => Pred::Or(
                Box::new(self.pred(object, a)?),
                Box::new(self.pred(object, b)?),
            ),
            Cond::Not(a) => Pred::Not(Box::new(self.pred(object, a)?)),
            Cond::Cmp { path, op, value } => {
                let field = self.filterable(object, path)?;
                let value = self.literal(field.field, value)?;
                Pred::Cmp {
                    field,
                    op: *op,
                    value,
                }
            }
            Cond::In {
                path,
                negated,
                values,
            } => {
                let field = self.filterable(object, path)?;
                let values = values
                    .iter()
                    .map(|v| self.literal(field.field, v))
                    .collect::<Result<_, _>>()?;
                Pred::In {
                    field,
                    negated: *negated,
                    values,
                }
            }
            Cond::Like { path, pattern } => {
                let field = self.filterable(object, path)?;
                let kind = field.field.kind;
                if !is_text(kind) && !matches!(kind, FieldKind::Id | FieldKind::Reference) {
                    return Err(SoqlError::invalid_field(
                        self.text,
                        path.offset(),
                        format!("invalid operator on {} field: LIKE", type_name(kind)),
                    ));
                }
                let Value::Str(s) = &pattern.value else {
                    return Err(self.type_mismatch(field.field, pattern));
                };
                Pred::Like {
                    field,
                    pattern: s.chars.clone(),
                }
            }
        })
    }

    fn type_mismatch(&self, field: &FieldDef, lit: &Literal) -> SoqlError {
        let kind = field.kind;
        let quoted = is_text(kind) || matches!(kind, FieldKind::Id | FieldKind::Reference);
        SoqlError::invalid_field(
            self.text,
            lit.offset,
            format!(
                "value of filter criterion for field '{}' must be of type {} and {}",
                field.name,
                type_name(kind),
                if quoted {
                    "should be enclosed in quotes"
                } else {
                    "should not be enclosed in quotes"
                }
            ),
        )
    }

    /// Converts a literal to the field's type, or explains the mismatch.
    fn literal(&self, field: &FieldDef, lit: &Literal) -> Result<Typed, SoqlError> {
        if lit.value == Value::Null {
            return Ok(Typed::Null);
        }
        let kind = field.kind;
        let plain = |lit: &Literal| {
            match &lit.value {
            Value::Str(s) => s.plain().map(Some).ok_or_else(|| {
                SoqlError::malformed(
                    self.text,
                    lit.offset,
                    format!(
                        "Invalid string literal {}. Illegal character sequence: \\% and \\_ are only allowed in LIKE patterns.",
                        lit.raw
                    ),
                )
            }),
            _ => Ok(None),
        }
        };
        let typed = match kind {
            FieldKind::Id | FieldKind::Reference => match plain(lit)? {
                Some(s) if s.is_empty() => Some(Typed::Null),
                Some(s) => Some(Typed::Id(id_key(&s).ok_or_else(|| {
                    SoqlError::invalid_filter(
                        self.text,
                        lit.offset,
                        format!("invalid ID field: {s}"),
                    )
                })?)),
                None => None,
            },
            k if is_text(k) => plain(lit)?.map(|s| Typed::Str(s.to_lowercase())),
            FieldKind::Boolean => match lit.value {
                Value::Bool(b) => Some(Typed::Bool(b)),
                _ => None,
            },
            FieldKind::Int | FieldKind::Double => match lit.value {
                Value::Number(n) => Some(Typed::Num(n)),
                _ => None,
            },
            FieldKind::DateTime => match &lit.value {
                Value::DateTime(dt) => Some(Typed::Instant(dt.with_timezone(&Utc))),
                Value::Relative(r) => {
                    let (start, end) = relative_range(*r, Utc::now().date_naive());
                    Some(Typed::InstantRange(midnight(start), midnight(end)))
                }
                _ => None,
            },
            FieldKind::Date => match &lit.value {
                Value::Date(d) => Some(Typed::Date(*d)),
                Value::Relative(r) => {
                    let (start, end) = relative_range(*r, Utc::now().date_naive());
                    Some(Typed::DateRange(start, end))
                }
                _ => None,
            },
            _ => None,
        };
        typed.ok_or_else(|| self.type_mismatch(field, lit))
    }

    /// Follows the relationship hops from `record`; `None` when a lookup is empty.
    fn walk(
        &self,
        record: &'a Record,
        hops: &[(&'a FieldDef, &'a ObjectDef)],
    ) -> Option<&'a Record> {
        let mut current = record;
        for (field, target) in hops {
            current = self.parent(current, field, target)?;
        }
        Some(current)
    }

    fn parent(
        &self,
        record: &'a Record,
        field: &FieldDef,
        target: &ObjectDef,
    ) -> Option<&'a Record> {
        let id = record.get(&field.name)?.as_str()?;
        let id18 = super::to18(id)?;
        self.db.record(&target.name, &id18)
    }

    /// A field's non-null value on `record` (through parents).
    fn get(&self, record: &'a Record, field: &Resolved<'a>) -> Option<&'a Json> {
        self.walk(record, &field.hops)?
            .get(&field.field.name)
            .filter(|v| !v.is_null())
    }

    fn typed(&self, record: &'a Record, field: &Resolved<'a>) -> Typed {
        self.get(record, field)
            .map_or(Typed::Null, |v| typed_value(field.field.kind, v))
    }

    fn matches(&self, record: &'a Record, pred: &Pred<'a>) -> bool {
        match pred {
            Pred::And(a, b) => self.matches(record, a) && self.matches(record, b),
            Pred::Or(a, b) => self.matches(record, a) || self.matches(record, b),
            Pred::Not(a) => !self.matches(record, a),
            Pred::Cmp { field, op, value } => compare(*op, &self.typed(record, field), value),
            Pred::In {
                field,
                negated,
                values,
            } => {
                let v = self.typed(record, field);
                values.iter().any(|lit| compare(CmpOp::Eq, &v, lit)) != *negated
            }
            Pred::Like { field, pattern } => match self.get(record, field) {
                Some(v) => like(&json_text(v), pattern),
                None => false,
            },
        }
    }

    fn filtered(&self, plan: &Plan<'a>, records: Vec<&'a Record>) -> Vec<&'a Record> {
        match &plan.filter {
            Some(p) => records.into_iter().filter(|r| self.matches(r, p)).collect(),
            None => records,
        }
    }

    /// Filters, sorts (stable) and pages.
    fn rows(&self, plan: &Plan<'a>, records: Vec<&'a Record>) -> Vec<&'a Record> {
        let rows = self.filtered(plan, records);
        let mut keyed: Vec<(Vec<Typed>, &'a Record)> = rows
            .into_iter()
            .map(|r| {
                let keys = plan.order.iter().map(|o| self.typed(r, &o.field)).collect();
                (keys, r)
            })
            .collect();
        if !plan.order.is_empty() {
            keyed.sort_by(|(a, _), (b, _)| {
                plan.order
                    .iter()
                    .zip(a.iter().zip(b))
                    .map(|(o, (x, y))| order_cmp(o, x, y))
                    .find(|ord| ord.is_ne())
                    .unwrap_or(Ordering::Equal)
            });
        }
        keyed
            .into_iter()
            .map(|(_, r)| r)
            .skip(plan.offset.unwrap_or(0))
            .take(plan.limit.unwrap_or(usize::MAX))
            .collect()
    }

    fn attributes(&self, object: &ObjectDef, record: &Record) -> Json {
        let id = record.get("Id").and_then(Json::as_str).unwrap_or_default();
        json!({
            "type": object.name,
            "url": format!("/services/data/{}/sobjects/{}/{}", self.version, object.name, id),
        })
    }

    fn render(&self, plan: &Plan<'a>, record: &'a Record, children: &mut ChildIndex<'a>) -> Json {
        let mut out = Map::new();
        out.insert("attributes".into(), self.attributes(plan.object, record));
        for item in &plan.items {
            match item {
                PlanItem::Field(field) => self.put(&mut out, record, &field.hops, field.field),
                PlanItem::Sub { rel, plan: sub } => {
                    let parent_key = record
                        .get("Id")
                        .and_then(Json::as_str)
                        .and_then(id_key)
                        .unwrap_or_default();
                    let candidates = children.get(self, rel, &parent_key);
                    let rows = self.rows(sub, candidates);
                    let value = if rows.is_empty() {
                        Json::Null
                    } else {
                        let records: Vec<Json> =
                            rows.iter().map(|r| self.render(sub, r, children)).collect();
                        json!({"totalSize": records.len(), "done": true, "records": records})
                    };
                    out.insert(rel.name.clone(), value);
                }
                PlanItem::CountRows | PlanItem::CountField { .. } => {}
            }
        }
        Json::Object(out)
    }

    /// Writes one selected field into `out`, nesting parent objects (with their
    /// own `attributes`) and writing `null` for an empty lookup.
    fn put(
        &self,
        out: &mut Map<String, Json>,
        record: &'a Record,
        hops: &[(&'a FieldDef, &'a ObjectDef)],
        field: &FieldDef,
    ) {
        let Some(((rel_field, target), rest)) = hops.split_first() else {
            let value = record.get(&field.name).cloned().unwrap_or(Json::Null);
            out.insert(field.name.clone(), value);
            return;
        };
        let key = rel_field
            .relationship_name
            .clone()
            .unwrap_or_else(|| rel_field.name.clone());
        match self.parent(record, rel_field, target) {
            None => {
                out.entry(key).or_insert(Json::Null);
            }
            Some(parent) => {
                let entry = out.entry(key).or_insert_with(|| {
                    let mut m = Map::new();
                    m.insert("attributes".into(), self.attributes(target, parent));
                    Json::Object(m)
                });
                if let Json::Object(m) = entry {
                    self.put(m, parent, rest, field);
                }
            }
        }
    }
}

/// Child records grouped by parent id, built once per relationship per query.
#[derive(Default)]
struct ChildIndex<'a> {
    by_rel: HashMap<(String, String), HashMap<String, Vec<&'a Record>>>,
}

impl<'a> ChildIndex<'a> {
    fn get(&mut self, ctx: &Ctx<'a>, rel: &ChildRel, parent_key: &str) -> Vec<&'a Record> {
        let index = self
            .by_rel
            .entry((rel.child_object.clone(), rel.field.clone()))
            .or_insert_with(|| {
                let mut map: HashMap<String, Vec<&'a Record>> = HashMap::new();
                for child in ctx.db.records(&rel.child_object) {
                    if let Some(key) = child
                        .get(&rel.field)
                        .and_then(Json::as_str)
                        .and_then(id_key)
                    {
                        map.entry(key).or_default().push(child);
                    }
                }
                map
            });
        index.get(parent_key).cloned().unwrap_or_default()
    }
}

fn type_name(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Id | FieldKind::Reference => "id",
        FieldKind::String
        | FieldKind::Textarea
        | FieldKind::Email
        | FieldKind::Phone
        | FieldKind::Picklist => "string",
        FieldKind::Boolean => "boolean",
        FieldKind::Int => "integer",
        FieldKind::Double => "double",
        FieldKind::DateTime => "dateTime",
        FieldKind::Date => "date",
    }
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(NaiveTime::MIN).and_utc()
}

/// `[start, end)` in days for a relative date literal, given today (UTC).
fn relative_range(r: RelativeDate, today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let plus = |n: u64| {
        today
            .checked_add_days(Days::new(n))
            .unwrap_or(NaiveDate::MAX)
    };
    let minus = |n: u64| {
        today
            .checked_sub_days(Days::new(n))
            .unwrap_or(NaiveDate::MIN)
    };
    match r {
        RelativeDate::Today => (today, plus(1)),
        RelativeDate::Yesterday => (minus(1), today),
        RelativeDate::Tomorrow => (plus(1), plus(2)),
        // Salesforce: the past n days plus the current day.
        RelativeDate::LastNDays(n) => (minus(u64::from(n)), plus(1)),
        // Salesforce: starts tomorrow and covers the next n days.
        RelativeDate::NextNDays(n) => (plus(1), plus(1 + u64::from(n))),
    }
}

/// Parses a stored date-time (`2026-11-22T07:00:00.000+0000`, RFC 3339, `…Z`).
pub(crate) fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

fn json_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A stored value as a comparable of the field's kind.
fn typed_value(kind: FieldKind, v: &Json) -> Typed {
    let text = v.as_str();
    let parsed = match kind {
        FieldKind::Id | FieldKind::Reference => {
            text.map(|s| Typed::Id(id_key(s).unwrap_or_else(|| s.to_ascii_lowercase())))
        }
        FieldKind::Boolean => v.as_bool().map(Typed::Bool),
        FieldKind::Int | FieldKind::Double => v
            .as_f64()
            .or_else(|| text.and_then(|s| s.trim().parse().ok()))
            .map(Typed::Num),
        FieldKind::DateTime => text.and_then(parse_instant).map(Typed::Instant),
        FieldKind::Date => text
            .and_then(|s| NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d").ok())
            .map(Typed::Date),
        _ => None,
    };
    parsed.unwrap_or_else(|| Typed::Str(json_text(v).to_lowercase()))
}

fn natural(a: &Typed, b: &Typed) -> Option<Ordering> {
    match (a, b) {
        (Typed::Str(x), Typed::Str(y)) | (Typed::Id(x), Typed::Id(y)) => Some(x.cmp(y)),
        (Typed::Num(x), Typed::Num(y)) => x.partial_cmp(y),
        (Typed::Bool(x), Typed::Bool(y)) => Some(x.cmp(y)),
        (Typed::Instant(x), Typed::Instant(y)) => Some(x.cmp(y)),
        (Typed::Date(x), Typed::Date(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// One filter comparison. `= null` / `!= null` test presence; a null field
/// value satisfies only `!=` (as in Salesforce).
fn compare(op: CmpOp, value: &Typed, lit: &Typed) -> bool {
    match (value, lit) {
        (Typed::Null, Typed::Null) => op == CmpOp::Eq,
        (_, Typed::Null) => op == CmpOp::Ne,
        (Typed::Null, _) => op == CmpOp::Ne,
        (Typed::Instant(v), Typed::InstantRange(start, end)) => in_range(op, v, start, end),
        (Typed::Date(v), Typed::DateRange(start, end)) => in_range(op, v, start, end),
        _ => match natural(value, lit) {
            Some(ord) => match op {
                CmpOp::Eq => ord.is_eq(),
                CmpOp::Ne => ord.is_ne(),
                CmpOp::Lt => ord.is_lt(),
                CmpOp::Gt => ord.is_gt(),
                CmpOp::Le => ord.is_le(),
                CmpOp::Ge => ord.is_ge(),
            },
            None => op == CmpOp::Ne,
        },
    }
}

fn in_range<T: PartialOrd>(op: CmpOp, v: &T, start: &T, end: &T) -> bool {
    match op {
        CmpOp::Eq => v >= start && v < end,
        CmpOp::Ne => !(v >= start && v < end),
        CmpOp::Lt => v < start,
        CmpOp::Le => v < end,
        CmpOp::Gt => v >= end,
        CmpOp::Ge => v >= start,
    }
}

fn order_cmp(key: &OrderKey<'_>, a: &Typed, b: &Typed) -> Ordering {
    match (a == &Typed::Null, b == &Typed::Null) {
        (true, true) => Ordering::Equal,
        (true, false) if key.nulls_last => Ordering::Greater,
        (true, false) => Ordering::Less,
        (false, true) if key.nulls_last => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => {
            let ord = natural(a, b).unwrap_or(Ordering::Equal);
            if key.descending { ord.reverse() } else { ord }
        }
    }
}

/// Case-insensitive LIKE: `%` any run, `_` one character, `\%`/`\_` literal.
fn like(value: &str, pattern: &[PatChar]) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum P {
        Any,
        One,
        Ch(char),
    }
    let pat: Vec<P> = pattern
        .iter()
        .flat_map(|p| -> Vec<P> {
            match *p {
                PatChar::Lit('%') => vec![P::Any],
                PatChar::Lit('_') => vec![P::One],
                PatChar::Lit(c) | PatChar::Escaped(c) => c.to_lowercase().map(P::Ch).collect(),
            }
        })
        .collect();
    let text: Vec<char> = value.to_lowercase().chars().collect();
    // Iterative wildcard match with single-star backtracking.
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some(P::Any) => {
                star = Some((p, t));
                p += 1;
            }
            Some(P::One) => {
                t += 1;
                p += 1;
            }
            Some(P::Ch(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|x| *x == P::Any)
}
