//! `GET sobjects/{Type}/describe`: object and field metadata with the attributes clients read
//! (`type`, `soapType`, `length`, `picklistValues`, `filterable`, `sortable`, `nillable`, …).

use serde_json::{Value, json};

use super::sobjects::object_info;
use super::{Call, Reply};
use crate::error::SfError;
use crate::schema::{FieldDef, FieldKind, ObjectDef};
use crate::store::Store;

fn kind_name(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Id => "id",
        FieldKind::Reference => "reference",
        FieldKind::String => "string",
        FieldKind::Textarea => "textarea",
        FieldKind::Email => "email",
        FieldKind::Phone => "phone",
        FieldKind::Picklist => "picklist",
        FieldKind::Boolean => "boolean",
        FieldKind::Int => "int",
        FieldKind::Double => "double",
        FieldKind::DateTime => "datetime",
        FieldKind::Date => "date",
    }
}

fn soap_type(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Id | FieldKind::Reference => "tns:ID",
        FieldKind::String
        | FieldKind::Textarea
        | FieldKind::Email
        | FieldKind::Phone
        | FieldKind::Picklist => "xsd:string",
        FieldKind::Boolean => "xsd:boolean",
        FieldKind::Int => "xsd:int",
        FieldKind::Double => "xsd:double",
        FieldKind::DateTime => "xsd:dateTime",
        FieldKind::Date => "xsd:date",
    }
}

/// The standard picklist values of the emulated org (the Salesforce defaults for a new org);
/// the first is the default where the field has one.
pub(crate) fn picklist_values(object: &str, field: &str) -> &'static [&'static str] {
    match (object, field) {
        ("Case", "Status") => &["New", "Working", "Escalated", "Closed"],
        ("Case", "Priority") => &["High", "Medium", "Low"],
        ("Case", "Origin") => &["Phone", "Email", "Web"],
        ("Case", "Type") => &[
            "Mechanical",
            "Electrical",
            "Electronic",
            "Structural",
            "Other",
        ],
        ("Case", "Reason") => &[
            "Installation",
            "Equipment Complexity",
            "Performance",
            "Breakdown",
            "Equipment Design",
            "Feedback",
            "Other",
        ],
        ("EmailMessage", "Status") => &["0", "1", "2", "3", "4", "5"],
        _ => &[],
    }
}

fn picklist_label(object: &str, field: &str, value: &str) -> String {
    if (object, field) == ("EmailMessage", "Status") {
        let label = match value {
            "0" => "New",
            "1" => "Read",
            "2" => "Replied",
            "3" => "Sent",
            "4" => "Forwarded",
            _ => "Draft",
        };
        return label.to_string();
    }
    value.to_string()
}

/// Long text areas (over 255 characters) cannot be filtered, sorted or grouped in SOQL.
fn is_long_text(f: &FieldDef) -> bool {
    f.kind == FieldKind::Textarea && f.length.unwrap_or(0) > 255
}

fn field_json(obj: &ObjectDef, f: &FieldDef) -> Value {
    let length = match f.kind {
        FieldKind::Id | FieldKind::Reference => 18,
        _ => f.length.unwrap_or(0),
    };
    let picklist: Vec<Value> = picklist_values(&obj.name, &f.name)
        .iter()
        .map(|v| {
            json!({
                "active": true,
                "defaultValue": f.default.as_ref().and_then(Value::as_str) == Some(*v),
                "label": picklist_label(&obj.name, &f.name, v),
                "validFor": null,
                "value": v,
            })
        })
        .collect();
    let long = is_long_text(f);
    let auto_number = obj.name == "Case" && f.name == "CaseNumber";
    json!({
        "name": f.name,
        "label": f.label,
        "type": kind_name(f.kind),
        "soapType": soap_type(f.kind),
        "length": length,
        "byteLength": if f.length_in_bytes { length } else { length * 3 },
        "digits": if f.kind == FieldKind::Int { 9 } else { 0 },
        "precision": if f.kind == FieldKind::Double { 18 } else { 0 },
        "scale": if f.kind == FieldKind::Double { 2 } else { 0 },
        "createable": f.createable,
        "updateable": f.updateable,
        "nillable": !f.required && f.kind != FieldKind::Boolean && f.name != "Id" && !auto_number,
        "defaultedOnCreate": f.default.is_some() || !f.createable,
        "defaultValue": f.default.clone().unwrap_or(Value::Null),
        "externalId": f.external_id,
        "unique": f.unique,
        "caseSensitive": false,
        "custom": f.name.ends_with("__c"),
        "calculated": false,
        "autoNumber": auto_number,
        "filterable": !long,
        "sortable": !long,
        "groupable": !long && !matches!(f.kind, FieldKind::Double | FieldKind::DateTime),
        "idLookup": f.name == "Id" || f.external_id || auto_number || f.name == "Username",
        "nameField": f.name == "Name" || auto_number,
        "htmlFormatted": f.name == "HtmlBody",
        "picklistValues": picklist,
        "restrictedPicklist": false,
        "referenceTo": f.reference_to.iter().collect::<Vec<_>>(),
        "relationshipName": f.relationship_name,
    })
}

/// `GET sobjects/{Type}/describe`
pub(crate) fn describe(store: &Store, call: &Call, t: &str) -> Reply {
    let Some(obj) = store.schema.object(t) else {
        return SfError::not_found().into();
    };
    let fields: Vec<Value> = obj.fields.iter().map(|f| field_json(obj, f)).collect();
    let children: Vec<Value> = obj
        .children
        .iter()
        .map(|c| json!({"childSObject": c.child_object, "field": c.field, "relationshipName": c.name}))
        .collect();
    let mut body = object_info(obj, &call.base());
    body["fields"] = Value::Array(fields);
    body["childRelationships"] = Value::Array(children);
    Reply::ok(body)
}
