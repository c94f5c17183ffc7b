//! `FIELDS(ALL)`, `FIELDS(STANDARD)` and `FIELDS(CUSTOM)`: expanded into the object's fields
//! before a `SELECT` is compiled, with Salesforce's rule that the unbounded forms (ALL, CUSTOM)
//! need a `LIMIT` of at most 200. Fields also named explicitly are selected once.

use super::ast::{FieldSet, Name, Path, Select, SelectItem};
use super::error::SoqlError;
use crate::schema::ObjectDef;

/// Largest `LIMIT` allowed with `FIELDS(ALL)` or `FIELDS(CUSTOM)`.
pub(crate) const MAX_LIMIT: usize = 200;

/// Whether the select uses `FIELDS(…)` at all.
pub(crate) fn uses_fields(select: &Select) -> bool {
    select
        .items
        .iter()
        .any(|i| matches!(i, SelectItem::Fields { .. }))
}

/// The select with each `FIELDS(…)` replaced by plain field items.
pub(crate) fn expand(text: &str, select: &Select, object: &ObjectDef) -> Result<Select, SoqlError> {
    let explicit: Vec<String> = select
        .items
        .iter()
        .filter_map(|i| match i {
            SelectItem::Field(p) if p.segments.len() == 1 => {
                Some(p.segments[0].name.to_ascii_lowercase())
            }
            _ => None,
        })
        .collect();
    let mut added: Vec<String> = Vec::new();
    let mut items = Vec::new();
    for item in &select.items {
        let SelectItem::Fields { which, offset } = item else {
            items.push(item.clone());
            continue;
        };
        let unbounded = matches!(which, FieldSet::All | FieldSet::Custom);
        if unbounded && select.limit.is_none_or(|l| l > MAX_LIMIT) {
            return Err(SoqlError::malformed(
                text,
                *offset,
                format!("The SOQL FIELDS function must have a LIMIT of at most {MAX_LIMIT}"),
            ));
        }
        for field in &object.fields {
            let custom = field.name.ends_with("__c");
            let wanted = match which {
                FieldSet::All => true,
                FieldSet::Standard => !custom,
                FieldSet::Custom => custom,
            };
            let key = field.name.to_ascii_lowercase();
            if !wanted || explicit.contains(&key) || added.contains(&key) {
                continue;
            }
            added.push(key);
            items.push(SelectItem::Field(Path {
                segments: vec![Name {
                    name: field.name.clone(),
                    offset: *offset,
                }],
            }));
        }
    }
    Ok(Select {
        items,
        ..select.clone()
    })
}
