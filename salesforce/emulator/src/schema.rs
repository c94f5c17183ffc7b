//! The emulated org's metadata: which sObjects exist, their fields, and the
//! relationships SOQL can walk. Field names, labels and lengths follow the
//! Salesforce Object Reference (see `docs/emulator.md`).

use serde::{Deserialize, Serialize};

/// A record as stored: canonical field name → JSON value. Always holds `Id`.
pub type Record = serde_json::Map<String, serde_json::Value>;

/// The field types the emulator distinguishes (validation, SOQL comparison, JSON shape).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    Id,
    Reference,
    String,
    Textarea,
    Email,
    Phone,
    Picklist,
    Boolean,
    Int,
    Double,
    DateTime,
    Date,
}

/// One field of an sObject.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FieldDef {
    /// API name, e.g. `Subject` or `Case_From__c`.
    pub name: String,
    /// Label used in error messages (`Body: data value too large: …`).
    pub label: String,
    pub kind: FieldKind,
    /// Maximum length; counted in characters unless `length_in_bytes`.
    #[serde(default)]
    pub length: Option<usize>,
    #[serde(default)]
    pub length_in_bytes: bool,
    /// Must be present (non-null) on create.
    #[serde(default)]
    pub required: bool,
    #[serde(default = "yes")]
    pub createable: bool,
    #[serde(default = "yes")]
    pub updateable: bool,
    /// Usable as the external-id segment of an upsert.
    #[serde(default)]
    pub external_id: bool,
    /// Values must be unique across the object (case-insensitive), as for unique external ids.
    #[serde(default)]
    pub unique: bool,
    /// Value set on create when the field is absent.
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    /// For `Reference` fields: the target object.
    #[serde(default)]
    pub reference_to: Option<String>,
    /// For `Reference` fields: the relationship name used in SOQL (`Contact`, `Parent`).
    #[serde(default)]
    pub relationship_name: Option<String>,
}

fn yes() -> bool {
    true
}

/// A child relationship (`Case.CaseComments` → `CaseComment.ParentId`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChildRel {
    /// Relationship name used in sub-queries, e.g. `CaseComments`.
    pub name: String,
    /// The child object, e.g. `CaseComment`.
    pub child_object: String,
    /// The child's reference field pointing at the parent, e.g. `ParentId`.
    pub field: String,
}

/// One sObject type.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectDef {
    pub name: String,
    pub label: String,
    /// Three-character key prefix of record ids (`500` for Case).
    pub key_prefix: String,
    pub fields: Vec<FieldDef>,
    pub children: Vec<ChildRel>,
}

impl ObjectDef {
    /// Field by API name, case-insensitively (as Salesforce resolves names).
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// Reference field by its relationship name (`Contact` → `ContactId`).
    pub fn parent_relationship(&self, relationship: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| {
            f.relationship_name
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case(relationship))
        })
    }

    /// Child relationship by name (`CaseComments`).
    pub fn child(&self, relationship: &str) -> Option<&ChildRel> {
        self.children
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(relationship))
    }
}

/// The whole org's metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Schema {
    pub objects: Vec<ObjectDef>,
}

/// A custom field added by configuration (`Case_From__c`, an external id, …).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomField {
    /// The object it is added to, e.g. `Case`.
    pub object: String,
    #[serde(flatten)]
    pub field: FieldDef,
}

impl Schema {
    /// Object by API name, case-insensitively.
    pub fn object(&self, name: &str) -> Option<&ObjectDef> {
        self.objects
            .iter()
            .find(|o| o.name.eq_ignore_ascii_case(name))
    }

    /// Object owning ids with this key prefix (case-sensitive, as prefixes are).
    pub fn object_by_prefix(&self, prefix: &str) -> Option<&ObjectDef> {
        self.objects.iter().find(|o| o.key_prefix == prefix)
    }

    /// Adds (or replaces) a custom field. Errors name what is wrong.
    pub fn add_custom_field(&mut self, custom: CustomField) -> Result<(), String> {
        let object = self
            .objects
            .iter_mut()
            .find(|o| o.name.eq_ignore_ascii_case(&custom.object))
            .ok_or_else(|| format!("unknown object '{}' for custom field", custom.object))?;
        if !custom.field.name.ends_with("__c") {
            return Err(format!(
                "custom field '{}' must end with __c",
                custom.field.name
            ));
        }
        object
            .fields
            .retain(|f| !f.name.eq_ignore_ascii_case(&custom.field.name));
        object.fields.push(custom.field);
        Ok(())
    }

    /// The standard objects Handoff works with: Case, CaseComment, EmailMessage,
    /// Contact, Account, User, and the (read-only) Organization, Profile, PermissionSet and
    /// PermissionSetAssignment.
    pub fn standard() -> Self {
        Schema {
            objects: vec![
                case(),
                case_comment(),
                email_message(),
                contact(),
                account(),
                user(),
                profile(),
                permission_set(),
                permission_set_assignment(),
                organization(),
                conversation(),
                messaging_session(),
            ],
        }
    }
}

fn f(name: &str, label: &str, kind: FieldKind, length: Option<usize>) -> FieldDef {
    FieldDef {
        name: name.to_string(),
        label: label.to_string(),
        kind,
        length,
        length_in_bytes: false,
        required: false,
        createable: true,
        updateable: true,
        external_id: false,
        unique: false,
        default: None,
        reference_to: None,
        relationship_name: None,
    }
}

/// System fields every object has; maintained by the emulator, never writable.
fn system_fields() -> Vec<FieldDef> {
    let ro = |name: &str, label: &str, kind| FieldDef {
        createable: false,
        updateable: false,
        ..f(name, label, kind, None)
    };
    vec![
        ro("Id", "Record ID", FieldKind::Id),
        ro("IsDeleted", "Deleted", FieldKind::Boolean),
        ro("CreatedDate", "Created Date", FieldKind::DateTime),
        FieldDef {
            reference_to: Some("User".into()),
            relationship_name: Some("CreatedBy".into()),
            length: Some(18),
            ..ro("CreatedById", "Created By ID", FieldKind::Reference)
        },
        ro(
            "LastModifiedDate",
            "Last Modified Date",
            FieldKind::DateTime,
        ),
        FieldDef {
            reference_to: Some("User".into()),
            relationship_name: Some("LastModifiedBy".into()),
            length: Some(18),
            ..ro(
                "LastModifiedById",
                "Last Modified By ID",
                FieldKind::Reference,
            )
        },
        ro("SystemModstamp", "System Modstamp", FieldKind::DateTime),
    ]
}

fn reference(name: &str, label: &str, target: &str, relationship: &str) -> FieldDef {
    FieldDef {
        reference_to: Some(target.to_string()),
        relationship_name: Some(relationship.to_string()),
        ..f(name, label, FieldKind::Reference, Some(18))
    }
}

fn case() -> ObjectDef {
    let mut fields = system_fields();
    fields.extend([
        FieldDef {
            createable: false,
            updateable: false,
            ..f("CaseNumber", "Case Number", FieldKind::String, Some(30))
        },
        f("Subject", "Subject", FieldKind::String, Some(255)),
        f(
            "Description",
            "Description",
            FieldKind::Textarea,
            Some(32_000),
        ),
        FieldDef {
            default: Some(serde_json::json!("New")),
            ..f("Status", "Status", FieldKind::Picklist, Some(255))
        },
        FieldDef {
            default: Some(serde_json::json!("Medium")),
            ..f("Priority", "Priority", FieldKind::Picklist, Some(255))
        },
        f("Origin", "Case Origin", FieldKind::Picklist, Some(255)),
        f("Type", "Case Type", FieldKind::Picklist, Some(255)),
        f("Reason", "Case Reason", FieldKind::Picklist, Some(255)),
        f("SuppliedEmail", "Web Email", FieldKind::Email, Some(80)),
        f("SuppliedName", "Web Name", FieldKind::String, Some(80)),
        f("SuppliedPhone", "Web Phone", FieldKind::Phone, Some(40)),
        f(
            "SuppliedCompany",
            "Web Company",
            FieldKind::String,
            Some(80),
        ),
        FieldDef {
            createable: false,
            updateable: false,
            default: Some(serde_json::json!(false)),
            ..f("IsClosed", "Closed", FieldKind::Boolean, None)
        },
        FieldDef {
            createable: false,
            updateable: false,
            ..f("ClosedDate", "Closed Date", FieldKind::DateTime, None)
        },
        f(
            "Comments",
            "Internal Comments",
            FieldKind::Textarea,
            Some(4_000),
        ),
        reference("ContactId", "Contact ID", "Contact", "Contact"),
        reference("AccountId", "Account ID", "Account", "Account"),
        reference("OwnerId", "Owner ID", "User", "Owner"),
        reference("ParentId", "Parent Case ID", "Case", "Parent"),
        f("SourceId", "Source ID", FieldKind::Reference, Some(18)),
    ]);
    ObjectDef {
        name: "Case".into(),
        label: "Case".into(),
        key_prefix: "500".into(),
        fields,
        children: vec![
            ChildRel {
                name: "CaseComments".into(),
                child_object: "CaseComment".into(),
                field: "ParentId".into(),
            },
            ChildRel {
                name: "EmailMessages".into(),
                child_object: "EmailMessage".into(),
                field: "ParentId".into(),
            },
            ChildRel {
                name: "Cases".into(),
                child_object: "Case".into(),
                field: "ParentId".into(),
            },
        ],
    }
}

fn case_comment() -> ObjectDef {
    let mut fields = system_fields();
    fields.extend([
        FieldDef {
            required: true,
            updateable: false,
            ..reference("ParentId", "Parent ID", "Case", "Parent")
        },
        FieldDef {
            length_in_bytes: true,
            ..f("CommentBody", "Body", FieldKind::Textarea, Some(4_000))
        },
        FieldDef {
            default: Some(serde_json::json!(false)),
            ..f("IsPublished", "Published", FieldKind::Boolean, None)
        },
        FieldDef {
            default: Some(serde_json::json!(false)),
            ..f(
                "IsNotificationSelected",
                "Notification Selected",
                FieldKind::Boolean,
                None,
            )
        },
    ]);
    ObjectDef {
        name: "CaseComment".into(),
        label: "Case Comment".into(),
        key_prefix: "00a".into(),
        fields,
        children: vec![],
    }
}

fn email_message() -> ObjectDef {
    let mut fields = system_fields();
    fields.extend([
        reference("ParentId", "Parent Case ID", "Case", "Parent"),
        f(
            "RelatedToId",
            "Related To ID",
            FieldKind::Reference,
            Some(18),
        ),
        f("Subject", "Subject", FieldKind::String, Some(3_000)),
        f("TextBody", "Text Body", FieldKind::Textarea, Some(32_000)),
        f("HtmlBody", "HTML Body", FieldKind::Textarea, Some(32_000)),
        f("Headers", "Headers", FieldKind::Textarea, Some(32_000)),
        f("FromAddress", "From Address", FieldKind::Email, Some(1_000)),
        f("FromName", "From Name", FieldKind::String, Some(1_000)),
        f("ToAddress", "To Address", FieldKind::String, Some(4_000)),
        f("CcAddress", "CC Address", FieldKind::String, Some(4_000)),
        f("BccAddress", "BCC Address", FieldKind::String, Some(4_000)),
        FieldDef {
            default: Some(serde_json::json!(false)),
            ..f("Incoming", "Is Incoming", FieldKind::Boolean, None)
        },
        FieldDef {
            default: Some(serde_json::json!("0")),
            ..f("Status", "Status", FieldKind::Picklist, Some(40))
        },
        f("MessageDate", "Message Date", FieldKind::DateTime, None),
        f(
            "MessageIdentifier",
            "Message ID",
            FieldKind::String,
            Some(255),
        ),
        f(
            "ThreadIdentifier",
            "Thread ID",
            FieldKind::String,
            Some(255),
        ),
        f(
            "ReplyToEmailMessageId",
            "Email Message ID",
            FieldKind::Reference,
            Some(18),
        ),
        FieldDef {
            default: Some(serde_json::json!(false)),
            ..f(
                "IsExternallyVisible",
                "Externally Visible",
                FieldKind::Boolean,
                None,
            )
        },
    ]);
    ObjectDef {
        name: "EmailMessage".into(),
        label: "Email Message".into(),
        key_prefix: "02s".into(),
        fields,
        children: vec![],
    }
}

fn contact() -> ObjectDef {
    let mut fields = system_fields();
    fields.extend([
        f("FirstName", "First Name", FieldKind::String, Some(40)),
        FieldDef {
            required: true,
            ..f("LastName", "Last Name", FieldKind::String, Some(80))
        },
        f("Email", "Email", FieldKind::Email, Some(80)),
        f("Phone", "Business Phone", FieldKind::Phone, Some(40)),
        f("MobilePhone", "Mobile Phone", FieldKind::Phone, Some(40)),
        reference("AccountId", "Account ID", "Account", "Account"),
    ]);
    ObjectDef {
        name: "Contact".into(),
        label: "Contact".into(),
        key_prefix: "003".into(),
        fields,
        children: vec![ChildRel {
            name: "Cases".into(),
            child_object: "Case".into(),
            field: "ContactId".into(),
        }],
    }
}

fn account() -> ObjectDef {
    let mut fields = system_fields();
    fields.extend([
        FieldDef {
            required: true,
            ..f("Name", "Account Name", FieldKind::String, Some(255))
        },
        f("Phone", "Account Phone", FieldKind::Phone, Some(40)),
    ]);
    ObjectDef {
        name: "Account".into(),
        label: "Account".into(),
        key_prefix: "001".into(),
        fields,
        children: vec![
            ChildRel {
                name: "Contacts".into(),
                child_object: "Contact".into(),
                field: "AccountId".into(),
            },
            ChildRel {
                name: "Cases".into(),
                child_object: "Case".into(),
                field: "AccountId".into(),
            },
        ],
    }
}

fn user() -> ObjectDef {
    let mut fields = system_fields();
    fields.extend([
        FieldDef {
            required: true,
            ..f("Username", "Username", FieldKind::String, Some(80))
        },
        f("Name", "Full Name", FieldKind::String, Some(121)),
        f("Email", "Email", FieldKind::Email, Some(128)),
        reference("ProfileId", "Profile ID", PROFILE, "Profile"),
    ]);
    ObjectDef {
        name: "User".into(),
        label: "User".into(),
        key_prefix: "005".into(),
        fields,
        children: vec![ChildRel {
            name: "PermissionSetAssignments".into(),
            child_object: PERMISSION_SET_ASSIGNMENT.into(),
            field: "AssigneeId".into(),
        }],
    }
}

/// Fields the configuration sets and the API only reads.
fn read_only(name: &str, label: &str, kind: FieldKind, length: Option<usize>) -> FieldDef {
    FieldDef {
        createable: false,
        updateable: false,
        ..f(name, label, kind, length)
    }
}

/// `Profile` (key prefix `00e`): one per profile name the configured users have.
fn profile() -> ObjectDef {
    let mut fields = system_fields();
    fields.push(read_only("Name", "Name", FieldKind::String, Some(255)));
    ObjectDef {
        name: PROFILE.into(),
        label: "Profile".into(),
        key_prefix: "00e".into(),
        fields,
        children: vec![ChildRel {
            name: "Users".into(),
            child_object: "User".into(),
            field: "ProfileId".into(),
        }],
    }
}

/// `PermissionSet` (key prefix `0PS`): `Name` is the API name, `Label` the display name.
fn permission_set() -> ObjectDef {
    let mut fields = system_fields();
    fields.extend([
        read_only("Name", "Name", FieldKind::String, Some(80)),
        read_only("Label", "Label", FieldKind::String, Some(80)),
    ]);
    ObjectDef {
        name: PERMISSION_SET.into(),
        label: "Permission Set".into(),
        key_prefix: "0PS".into(),
        fields,
        children: vec![ChildRel {
            name: "Assignments".into(),
            child_object: PERMISSION_SET_ASSIGNMENT.into(),
            field: "PermissionSetId".into(),
        }],
    }
}

/// `PermissionSetAssignment` (key prefix `0Pa`): a permission set given to a user.
fn permission_set_assignment() -> ObjectDef {
    let mut fields = system_fields();
    let ro_ref = |name: &str, label: &str, target: &str, relationship: &str| FieldDef {
        createable: false,
        updateable: false,
        ..reference(name, label, target, relationship)
    };
    fields.extend([
        ro_ref("AssigneeId", "Assignee ID", "User", "Assignee"),
        ro_ref(
            "PermissionSetId",
            "Permission Set ID",
            PERMISSION_SET,
            "PermissionSet",
        ),
    ]);
    ObjectDef {
        name: PERMISSION_SET_ASSIGNMENT.into(),
        label: "Permission Set Assignment".into(),
        key_prefix: "0Pa".into(),
        fields,
        children: vec![],
    }
}

/// `Organization`: one read-only record, the org itself (queryable, never written by the API).
fn organization() -> ObjectDef {
    let ro = |name: &str, label: &str, kind, length| FieldDef {
        createable: false,
        updateable: false,
        ..f(name, label, kind, length)
    };
    let mut fields = system_fields();
    fields.extend([
        ro("Name", "Name", FieldKind::String, Some(80)),
        ro(
            "OrganizationType",
            "Edition",
            FieldKind::Picklist,
            Some(255),
        ),
        ro("InstanceName", "Instance Name", FieldKind::String, Some(5)),
        ro("IsSandbox", "Is Sandbox", FieldKind::Boolean, None),
        ro(
            "NamespacePrefix",
            "Namespace Prefix",
            FieldKind::String,
            Some(15),
        ),
        ro("Country", "Country", FieldKind::String, Some(80)),
        ro(
            "TimeZoneSidKey",
            "Default Time Zone",
            FieldKind::Picklist,
            Some(40),
        ),
        ro(
            "LanguageLocaleKey",
            "Language",
            FieldKind::Picklist,
            Some(40),
        ),
        ro(
            "DefaultLocaleSidKey",
            "Locale",
            FieldKind::Picklist,
            Some(40),
        ),
    ]);
    ObjectDef {
        name: ORGANIZATION.into(),
        label: "Organization".into(),
        key_prefix: "00D".into(),
        fields,
        children: vec![],
    }
}

/// `Conversation` (MIAW): one per client conversation id; written only by the MIAW endpoints.
/// Key prefix `0dw` is a guess (not in the reference).
fn conversation() -> ObjectDef {
    let ro = |name: &str, label: &str, kind, length| FieldDef {
        createable: false,
        updateable: false,
        ..f(name, label, kind, length)
    };
    let mut fields = system_fields();
    fields.extend([
        FieldDef {
            external_id: true,
            ..ro(
                "ConversationIdentifier",
                "Conversation Identifier",
                FieldKind::String,
                Some(255),
            )
        },
        ro(
            "ConversationChannelId",
            "Channel ID",
            FieldKind::Reference,
            Some(18),
        ),
    ]);
    ObjectDef {
        name: "Conversation".into(),
        label: "Conversation".into(),
        key_prefix: "0dw".into(),
        fields,
        children: vec![ChildRel {
            name: "MessagingSessions".into(),
            child_object: "MessagingSession".into(),
            field: "ConversationId".into(),
        }],
    }
}

/// `MessagingSession` (key prefix `0Mw`): one per messaging session of a MIAW conversation;
/// written only by the MIAW endpoints and the rep console.
fn messaging_session() -> ObjectDef {
    let ro = |name: &str, label: &str, kind, length| FieldDef {
        createable: false,
        updateable: false,
        ..f(name, label, kind, length)
    };
    let mut fields = system_fields();
    fields.extend([
        FieldDef {
            createable: false,
            updateable: false,
            ..reference(
                "ConversationId",
                "Conversation ID",
                "Conversation",
                "Conversation",
            )
        },
        ro("Status", "Status", FieldKind::Picklist, Some(255)),
        ro("Origin", "Origin", FieldKind::Picklist, Some(255)),
        ro("AgentType", "Agent Type", FieldKind::Picklist, Some(255)),
        ro("StartTime", "Start Time", FieldKind::DateTime, None),
        ro("EndTime", "End Time", FieldKind::DateTime, None),
        ro(
            "EndedByType",
            "Ended By Type",
            FieldKind::Picklist,
            Some(255),
        ),
        ro("SessionKey", "Session Key", FieldKind::String, Some(36)),
    ]);
    ObjectDef {
        name: "MessagingSession".into(),
        label: "Messaging Session".into(),
        key_prefix: "0Mw".into(),
        fields,
        children: vec![],
    }
}

/// The one object the API can read but never create, update or delete.
pub const ORGANIZATION: &str = "Organization";
/// Read-only through the API too: made from the configured users.
pub const PROFILE: &str = "Profile";
pub const PERMISSION_SET: &str = "PermissionSet";
pub const PERMISSION_SET_ASSIGNMENT: &str = "PermissionSetAssignment";

/// Objects the API can read but never create, update or delete.
pub const READ_ONLY_OBJECTS: [&str; 4] = [
    ORGANIZATION,
    PROFILE,
    PERMISSION_SET,
    PERMISSION_SET_ASSIGNMENT,
];

/// What SOQL execution needs from the record store.
pub trait DataSource {
    fn schema(&self) -> &Schema;
    /// All live records of an object (canonical name), in insertion order.
    fn records(&self, object: &str) -> Vec<&Record>;
    /// One record by its 18-character id.
    fn record(&self, object: &str, id18: &str) -> Option<&Record>;
}
