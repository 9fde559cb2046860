//! Prints the request body `benches/load.sh` sends: a realistic 20-line 2204 from the seeded generator
//! (`claimgate::gen`), the first seed whose lines the national-baseline pack does not block (so the
//! load measures the forwarding path, not claimgate answering blocks itself). The visit, the patient,
//! the message id and the line numbers are placeholders the load generator fills per request:
//! `@VISIT@`, `@PSN@`, `@MSG@`, and `@SN@` (each line's `feedetl_sn` is `@SN@` + two digits).
//!
//! Run: `cargo run --release --example load_envelope -- rulesets/national-baseline`.

use claimgate::claim::NoFacts;
use claimgate::pipeline::{prepare, Prepared};
use claimgate::rules::{self, Outcome};

fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "rulesets/national-baseline".into());
    let (_, rs) = rules::load(&[dir.into()]).map_err(|e| anyhow::anyhow!("{e}"))?;
    for seed in 1..1000u64 {
        let mut env = claimgate::gen::fee_upload(seed, 20, false);
        let bytes = serde_json::to_vec(&env)?;
        let head = claimgate::wire::parse_head(&bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
        let Prepared::Claims { claims, .. } = prepare(&head, &NoFacts).map_err(|e| anyhow::anyhow!("{e}"))? else {
            anyhow::bail!("a 2204 is a claim");
        };
        if claims.iter().any(|c| rules::evaluate(&rs, c).decision == Outcome::Block) {
            continue;
        }
        env["msgid"] = "@MSG@".into();
        for (i, l) in env["input"]["feedetail"].as_array_mut().into_iter().flatten().enumerate() {
            l["mdtrt_id"] = "@VISIT@".into();
            l["psn_no"] = "@PSN@".into();
            l["feedetl_sn"] = format!("@SN@{i:02}").into();
        }
        eprintln!("load_envelope: seed {seed} (no blocking hit without history)");
        println!("{}", serde_json::to_string(&env)?);
        return Ok(());
    }
    anyhow::bail!("no seed below 1000 gives a 20-line claim without a blocking hit")
}
