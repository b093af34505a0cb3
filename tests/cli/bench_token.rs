//! `milagro bench token` with tiny counts, so that the benchmark cannot rot: it starts the
//! IdP and `oidc-provider`, mints real codes at both, redeems them under the one load
//! driver, checks both sign ES256, and prints a table and a JSON report whose figures
//! parse.

use super::{json, milagro, stderr};

/// The rate of a table row `LABEL  N/s  p50 N µs, p99 N µs`.
fn rate_of(table: &str, label: &str) -> f64 {
    let line = table
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no row {label:?} in:\n{table}"));
    let value = line[line.find(label).unwrap() + label.len()..]
        .split_whitespace()
        .next()
        .unwrap();
    value
        .strip_suffix("/s")
        .unwrap_or_else(|| panic!("{line:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

#[test]
fn bench_token_measures_both_providers_at_each_level_and_its_figures_parse() {
    let output = milagro(&[
        "bench",
        "token",
        "--exchanges",
        "20",
        "--concurrency",
        "1,2",
        "--calls",
        "20",
    ]);
    let table = stderr(&output);
    assert!(output.status.success(), "{table}");
    let report = json(&output);
    let token = &report["token"];
    assert_eq!(token["id_token_alg"], serde_json::json!(["ES256", "ES256"]));
    for side in ["ours", "oidc_provider"] {
        let levels = token[side].as_array().unwrap();
        let concurrency: Vec<u64> = levels
            .iter()
            .map(|l| l["concurrency"].as_u64().unwrap())
            .collect();
        assert_eq!(concurrency, [1, 2], "{side}");
        for level in levels {
            for figure in ["per_s", "p50_us", "p99_us"] {
                assert!(level[figure].as_f64().unwrap() > 0.0, "{side}: {level}");
            }
        }
    }
    for (i, ratio) in token["ratios"].as_array().unwrap().iter().enumerate() {
        let expected = token["ours"][i]["per_s"].as_f64().unwrap()
            / token["oidc_provider"][i]["per_s"].as_f64().unwrap();
        let ratio = ratio["ours_over_oidc_provider"].as_f64().unwrap();
        assert!(
            (ratio - expected).abs() < 1e-9 * expected,
            "{ratio} {expected}"
        );
    }
    for raw in ["es256_sign", "client_secret_check", "storage_write"] {
        assert_eq!(token[raw]["calls"], 20, "{raw}");
        assert!(token[raw]["p50_us"].as_f64().unwrap() > 0.0, "{raw}");
    }
    for label in [
        "milagro IdP, c1",
        "milagro IdP, c2",
        "oidc-provider, c1",
        "oidc-provider, c2",
    ] {
        assert!(rate_of(&table, label) > 0.0, "{label}");
    }
    assert!(table.contains("ours / oidc-provider, c2"), "{table}");
}
