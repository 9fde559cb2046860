//! Rule packs: the source format, compilation to an indexed form, evaluation, explanation.
//!
//! Architecture Invariant: `compile` builds every regex, index and template once per activation;
//! `evaluate` does no I/O, cannot fail and never panics on bad data. Nothing here knows HTTP,
//! storage engines or JSON field names of the wire.

pub mod compile;
pub mod decision;
pub mod error;
pub mod eval;
pub mod kinds;
pub mod pack;
pub mod source;
pub mod template;

pub use compile::{compile, CompiledRule, CompiledRuleSet};
pub use decision::{Decision, Fact, Hit, Outcome, Unchecked, Val};
pub use error::{CompileError, Problem};
pub use eval::{evaluate, evaluate_naive};
pub use pack::{load_pack, pack_dirs, PackSource};
pub use source::{Action, Severity};

/// Loads and compiles packs from folders.
///
/// # Errors
/// Every problem of every pack.
pub fn load(dirs: &[std::path::PathBuf]) -> Result<(Vec<PackSource>, CompiledRuleSet), CompileError> {
    let mut packs = Vec::new();
    let mut problems = Vec::new();
    for d in dirs {
        match load_pack(d) {
            Ok(p) => packs.push(p),
            Err(e) => problems.extend(e.problems),
        }
    }
    if !problems.is_empty() {
        return Err(CompileError { problems });
    }
    let rs = compile(&packs)?;
    Ok((packs, rs))
}
