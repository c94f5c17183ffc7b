//! Live messaging (design §2, the MIAW path): the policies that decide what the customer is told
//! and whether a live conversation may open.

pub mod hours;
pub mod messages;
