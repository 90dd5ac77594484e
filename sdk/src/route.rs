//! Route targets as people write them: `<routing_id>/<model>[=WEIGHT]`.

use crate::proto;

/// `openai/gpt-4o=3` → target `openai/gpt-4o`, weight 3 (1 when not given).
pub fn parse_target(s: &str) -> Result<proto::RouteTarget, String> {
    let (target, weight) = match s.rsplit_once('=') {
        Some((t, w)) => (
            t,
            // 0 would reach the API as "unset" and be read as 1.
            w.parse::<u32>()
                .ok()
                .filter(|w| *w > 0)
                .ok_or_else(|| format!("weight in '{s}' must be a whole number from 1"))?,
        ),
        None => (s, 1),
    };
    if !target.contains('/') {
        return Err(format!(
            "target '{s}' must be <routing_id>/<model>[=WEIGHT]"
        ));
    }
    Ok(proto::RouteTarget {
        target: target.to_string(),
        weight,
        timeout_ms: 0,
    })
}

/// `direct`, `weighted`, `fallback` or `experiment`, in any case.
pub fn parse_strategy(s: &str) -> Result<proto::RouteStrategy, String> {
    match s.to_ascii_lowercase().as_str() {
        "direct" => Ok(proto::RouteStrategy::Direct),
        "weighted" => Ok(proto::RouteStrategy::Weighted),
        "fallback" => Ok(proto::RouteStrategy::Fallback),
        "experiment" => Ok(proto::RouteStrategy::Experiment),
        _ => Err(format!(
            "strategy '{s}' must be direct, weighted, fallback or experiment"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let check = |s: &str, want: Option<(&str, u32)>| {
            let got = parse_target(s).ok().map(|t| (t.target, t.weight));
            assert_eq!(got.as_ref().map(|(t, w)| (t.as_str(), *w)), want, "{s}");
        };
        check("openai/gpt-4o", Some(("openai/gpt-4o", 1)));
        check("openai/gpt-4o=3", Some(("openai/gpt-4o", 3)));
        check(
            "bedrock/anthropic.claude-v2:1=2",
            Some(("bedrock/anthropic.claude-v2:1", 2)),
        );
        check("gpt-4o", None);
        check("openai/gpt-4o=x", None);
        check("openai/gpt-4o=0", None);
        assert_eq!(
            parse_strategy("FALLBACK"),
            Ok(proto::RouteStrategy::Fallback)
        );
        assert!(parse_strategy("random").is_err());
    }
}
