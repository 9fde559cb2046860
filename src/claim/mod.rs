//! The normalised claim model the rules see: patient, encounter, lines.
//!
//! Architecture Invariant: money is integer fen (`Fen`), quantities and prices fixed-point; dates are
//! the service dates in the message, never the wall clock. Nothing here knows JSON field names
//! beyond the wire types it converts from.

pub mod history;
pub mod model;
pub mod money;
pub mod normalize;
pub mod time;

pub use history::{FundAsk, History, PastLine, PastSettlement, PastVisit, TraceUse};
pub use model::{Claim, Diagnosis, Encounter, Gender, ItemClass, Line, Patient, SmolStr, Stage, Visit};
pub use money::{Fen, Price, Qty};
pub use normalize::{Facts, NoFacts, PersonFacts, VisitFacts};
