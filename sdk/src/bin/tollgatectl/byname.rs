//! Names where the API takes ids, for what has no unique name on the server (API keys, admin
//! tokens): the CLI lists, then picks the one active item with that id or name.

use crate::exit::CliError;

/// The id of the one item of `items` (`what` in `scope`) whose id or name is `wanted`. No
/// match and several matches are errors; the latter lists the ids to choose from.
pub fn pick<T>(
    items: &[T],
    wanted: &str,
    (what, scope): (&str, &str),
    id: impl Fn(&T) -> &str,
    name: impl Fn(&T) -> &str,
) -> Result<String, CliError> {
    if let Some(item) = items.iter().find(|i| id(i) == wanted) {
        return Ok(id(item).to_owned());
    }
    let named: Vec<&str> = items
        .iter()
        .filter(|i| name(i) == wanted)
        .map(&id)
        .collect();
    match named.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => Err(CliError::Local(format!(
            "no active {what} with the id or name '{wanted}' {scope}"
        ))),
        many => Err(CliError::Usage(format!(
            "{} active {what}s are named '{wanted}' {scope}: give one of their ids ({})",
            many.len(),
            many.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_by_id_or_unique_name() {
        let items = [("key_1", "web"), ("key_2", "batch"), ("key_3", "batch")];
        let pick =
            |wanted: &str| pick(&items, wanted, ("key", "in repository r"), |i| i.0, |i| i.1);
        assert_eq!(pick("key_2").ok().as_deref(), Some("key_2"));
        assert_eq!(pick("web").ok().as_deref(), Some("key_1"));
        let Err(e) = pick("batch") else {
            panic!("ambiguous")
        };
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.render().contains("2 active keys are named 'batch' in repository r: give one of their ids (key_2, key_3)"),
            "{}",
            e.render()
        );
        let Err(e) = pick("mobile") else {
            panic!("unknown")
        };
        assert_eq!(e.exit_code(), 1);
        assert!(
            e.render()
                .contains("no active key with the id or name 'mobile' in repository r")
        );
    }
}
