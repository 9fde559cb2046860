//! Prints the request body `benches/load.sh` sends: a realistic 20-line 2204 from the seeded generator
//! (`claimgate::gen`), the first seed whose lines the national-baseline pack does not block, alone or
//! sent again to the same visit as the load does (so the load measures the forwarding path, not
//! claimgate answering blocks itself). The visit, the patient,
//! the message id and the line numbers are placeholders the load generator fills per request:
//! `@VISIT@`, `@PSN@`, `@MSG@`, and `@SN@` (each line's `feedetl_sn` is `@SN@` + two digits).
//!
//! Run: `cargo run --release --example load_envelope -- rulesets/national-baseline`.

use claimgate::claim::NoFacts;
use claimgate::history::History;
use claimgate::pipeline::{prepare, prepare_with, Prepared};
use claimgate::rules::{self, Outcome};

/// Whether `env`, accepted, blocks when it comes again for the same visit with other line numbers
/// (three times: `load.sh` registers enough visits that none gets more in one run).
fn blocks_when_sent_again(rs: &rules::CompiledRuleSet, env: &serde_json::Value) -> anyhow::Result<bool> {
    let history = History::ephemeral(Some(2));
    for n in 0..3 {
        let mut again = env.clone();
        again["msgid"] = format!("{}-{n}", env["msgid"].as_str().unwrap_or_default()).into();
        for l in again["input"]["feedetail"].as_array_mut().into_iter().flatten() {
            l["feedetl_sn"] = format!("{}-{n}", l["feedetl_sn"].as_str().unwrap_or_default()).into();
        }
        let bytes = serde_json::to_vec(&again)?;
        let head = claimgate::wire::parse_head(&bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
        let Prepared::Claims { claims, .. } =
            prepare_with(&head, &history, rs.lookback_days(), None).map_err(|e| anyhow::anyhow!("{e}"))?
        else {
            anyhow::bail!("a 2204 is a claim");
        };
        if claims.iter().any(|c| rules::evaluate(rs, c).decision == Outcome::Block) {
            return Ok(true);
        }
        let head = claimgate::wire::parse_head(&bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
        history.learn(&head, None, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(false)
}

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
        // The load sends the same lines to each visit again and again (fresh line numbers): the
        // per-day and per-visit rules see the earlier uploads, so the seed must not block then either.
        if blocks_when_sent_again(&rs, &env)? {
            continue;
        }
        env["msgid"] = "@MSG@".into();
        for (i, l) in env["input"]["feedetail"].as_array_mut().into_iter().flatten().enumerate() {
            l["mdtrt_id"] = "@VISIT@".into();
            l["psn_no"] = "@PSN@".into();
            l["feedetl_sn"] = format!("@SN@{i:02}").into();
        }
        eprintln!("load_envelope: seed {seed} (no blocking hit, alone or sent again to the same visit)");
        println!("{}", serde_json::to_string(&env)?);
        return Ok(());
    }
    anyhow::bail!("no seed below 1000 gives a 20-line claim without a blocking hit")
}
