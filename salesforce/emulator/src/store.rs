//! The in-memory org: schema plus records. One `Store` lives behind a mutex, so every request
//! is isolated. A request that must be all-or-nothing (composite, collections with allOrNone)
//! takes a savepoint: while one is open every change is journalled, and rolling back replays
//! the journal backwards (cost proportional to the changes, not to the org).

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::config::EmulatorConfig;
use crate::ids;
use crate::schema::{DataSource, Record, Schema};

/// Record numbers start here so minted ids look like real ones (`…00002…`), not `…0000001`.
const FIRST_RECORD_NUMBER: u64 = 2 * 62 * 62 * 62 * 62 * 62;

#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    rows: Vec<Record>,
    index: HashMap<String, usize>,
    deleted: Vec<Record>,
}

impl Table {
    fn reindex(&mut self) {
        self.index = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| (id_of(r).to_string(), i))
            .collect();
    }
}

fn id_of(r: &Record) -> &str {
    r.get("Id").and_then(Value::as_str).unwrap_or_default()
}

/// How to revert one change.
#[derive(Debug, Clone)]
enum Undo {
    Inserted {
        object: String,
        id: String,
    },
    Modified {
        object: String,
        id: String,
        before: Record,
    },
    Removed {
        object: String,
        index: usize,
        record: Record,
    },
}

/// An open savepoint; pass it back to `release` or `rollback`.
#[must_use]
#[derive(Debug)]
pub(crate) struct Savepoint {
    journal_len: usize,
    next_record_number: u64,
    next_case_number: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Store {
    pub(crate) schema: Schema,
    tables: BTreeMap<String, Table>,
    next_record_number: u64,
    next_case_number: u64,
    journal: Vec<Undo>,
    open_savepoints: usize,
}

impl Store {
    pub(crate) fn new(config: &EmulatorConfig) -> Result<Self, String> {
        let mut schema = Schema::standard();
        for custom in &config.custom_fields {
            schema.add_custom_field(custom.clone())?;
        }
        if let Some(email) = schema.objects.iter_mut().find(|o| o.name == "EmailMessage") {
            for f in email.fields.iter_mut() {
                if f.name == "TextBody" || f.name == "HtmlBody" {
                    f.length = Some(config.email_body_max_length);
                }
            }
        }
        let tables = schema
            .objects
            .iter()
            .map(|o| (o.name.clone(), Table::default()))
            .collect();
        Ok(Store {
            schema,
            tables,
            next_record_number: FIRST_RECORD_NUMBER,
            next_case_number: config.case_number_start,
            journal: Vec::new(),
            open_savepoints: 0,
        })
    }

    /// Starts journalling changes (savepoints nest).
    pub(crate) fn savepoint(&mut self) -> Savepoint {
        self.open_savepoints += 1;
        Savepoint {
            journal_len: self.journal.len(),
            next_record_number: self.next_record_number,
            next_case_number: self.next_case_number,
        }
    }

    /// Keeps the changes made since `sp`.
    pub(crate) fn release(&mut self, sp: Savepoint) {
        let _ = sp;
        self.close_savepoint();
    }

    /// Reverts every change made since `sp` (ids and case numbers are handed out again).
    pub(crate) fn rollback(&mut self, sp: Savepoint) {
        while self.journal.len() > sp.journal_len {
            if let Some(undo) = self.journal.pop() {
                self.revert(undo);
            }
        }
        self.next_record_number = sp.next_record_number;
        self.next_case_number = sp.next_case_number;
        self.close_savepoint();
    }

    fn close_savepoint(&mut self) {
        self.open_savepoints = self.open_savepoints.saturating_sub(1);
        if self.open_savepoints == 0 {
            self.journal.clear();
        }
    }

    fn journal(&mut self, undo: Undo) {
        if self.open_savepoints > 0 {
            self.journal.push(undo);
        }
    }

    fn revert(&mut self, undo: Undo) {
        match undo {
            Undo::Inserted { object, id } => {
                if let Some(t) = self.tables.get_mut(&object)
                    && let Some(i) = t.index.remove(&id)
                {
                    if i + 1 == t.rows.len() {
                        t.rows.pop();
                    } else {
                        t.rows.remove(i);
                        t.reindex();
                    }
                }
            }
            Undo::Modified { object, id, before } => {
                if let Some(t) = self.tables.get_mut(&object)
                    && let Some(&i) = t.index.get(&id)
                {
                    t.rows[i] = before;
                }
            }
            Undo::Removed {
                object,
                index,
                record,
            } => {
                let t = self.tables.entry(object).or_default();
                t.deleted.pop();
                t.rows.insert(index.min(t.rows.len()), record);
                t.reindex();
            }
        }
    }

    /// Canonical object name for a (case-insensitive) name.
    pub(crate) fn object_name(&self, name: &str) -> Option<String> {
        self.schema.object(name).map(|o| o.name.clone())
    }

    pub(crate) fn mint_id(&mut self, object: &str) -> String {
        let prefix = self
            .schema
            .object(object)
            .map(|o| o.key_prefix.clone())
            .unwrap_or_else(|| "000".to_string());
        let n = self.next_record_number;
        self.next_record_number += 1;
        ids::mint(&prefix, n)
    }

    pub(crate) fn next_case_number(&mut self) -> String {
        let n = self.next_case_number;
        self.next_case_number += 1;
        format!("{n:08}")
    }

    pub(crate) fn get(&self, object: &str, id18: &str) -> Option<&Record> {
        let t = self.tables.get(object)?;
        t.index.get(id18).map(|&i| &t.rows[i])
    }

    /// Mutable access to a live record (journalled when a savepoint is open).
    pub(crate) fn get_mut(&mut self, object: &str, id18: &str) -> Option<&mut Record> {
        let i = *self.tables.get(object)?.index.get(id18)?;
        if self.open_savepoints > 0 {
            let before = self.tables[object].rows[i].clone();
            self.journal(Undo::Modified {
                object: object.to_string(),
                id: id18.to_string(),
                before,
            });
        }
        self.tables.get_mut(object).map(|t| &mut t.rows[i])
    }

    pub(crate) fn is_deleted(&self, object: &str, id18: &str) -> bool {
        self.tables
            .get(object)
            .is_some_and(|t| t.deleted.iter().any(|r| id_of(r) == id18))
    }

    pub(crate) fn rows(&self, object: &str) -> &[Record] {
        self.tables
            .get(object)
            .map(|t| t.rows.as_slice())
            .unwrap_or_default()
    }

    pub(crate) fn insert(&mut self, object: &str, record: Record) {
        let id = id_of(&record).to_string();
        let t = self.tables.entry(object.to_string()).or_default();
        t.index.insert(id.clone(), t.rows.len());
        t.rows.push(record);
        self.journal(Undo::Inserted {
            object: object.to_string(),
            id,
        });
    }

    /// Removes a live record, keeps it (with `IsDeleted = true`) for `queryAll`.
    pub(crate) fn remove(&mut self, object: &str, id18: &str, now: &str) -> Option<Record> {
        let t = self.tables.get_mut(object)?;
        let i = *t.index.get(id18)?;
        let original = t.rows.remove(i);
        t.reindex();
        let mut record = original.clone();
        record.insert("IsDeleted".into(), Value::Bool(true));
        record.insert("SystemModstamp".into(), Value::String(now.to_string()));
        t.deleted.push(record.clone());
        self.journal(Undo::Removed {
            object: object.to_string(),
            index: i,
            record: original,
        });
        Some(record)
    }

    /// A `DataSource` over live records, plus deleted ones for `queryAll`.
    pub(crate) fn view(&self, include_deleted: bool) -> View<'_> {
        View {
            store: self,
            include_deleted,
        }
    }

    /// How many live records the org holds (all objects).
    pub(crate) fn record_count(&self) -> usize {
        self.tables.values().map(|t| t.rows.len()).sum()
    }

    /// Deleted records of an object (each with `IsDeleted` and its deletion `SystemModstamp`).
    pub(crate) fn deleted(&self, object: &str) -> &[Record] {
        self.tables
            .get(object)
            .map(|t| t.deleted.as_slice())
            .unwrap_or_default()
    }

    /// All live records of an object (snapshot).
    pub(crate) fn snapshot(&self, object: &str) -> Vec<Record> {
        self.object_name(object)
            .map(|o| self.rows(&o).to_vec())
            .unwrap_or_default()
    }
}

/// What SOQL runs against: live records, plus deleted ones for `queryAll`.
pub(crate) struct View<'a> {
    store: &'a Store,
    include_deleted: bool,
}

impl DataSource for View<'_> {
    fn schema(&self) -> &Schema {
        &self.store.schema
    }

    fn records(&self, object: &str) -> Vec<&Record> {
        let Some(name) = self.store.schema.object(object).map(|o| o.name.as_str()) else {
            return Vec::new();
        };
        let Some(t) = self.store.tables.get(name) else {
            return Vec::new();
        };
        let mut out: Vec<&Record> = t.rows.iter().collect();
        if self.include_deleted {
            out.extend(t.deleted.iter());
        }
        out
    }

    fn record(&self, object: &str, id18: &str) -> Option<&Record> {
        let name = self.store.schema.object(object)?.name.as_str();
        if let Some(r) = self.store.get(name, id18) {
            return Some(r);
        }
        if self.include_deleted {
            return self
                .store
                .tables
                .get(name)?
                .deleted
                .iter()
                .find(|r| id_of(r) == id18);
        }
        None
    }
}
