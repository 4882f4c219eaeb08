//! How long a name may be. Names are shown in every list and log line and
//! become ids; unbounded, one object could make each of those as large as
//! its creator liked. Hookdeck caps names at 155 characters: so does hookgate,
//! for names given in gateway.toml and through the API alike.

pub const MAX_NAME_CHARS: usize = 155;

/// Refuses a name longer than `MAX_NAME_CHARS` (counted in characters, not bytes).
pub fn check_length(name: &str) -> Result<(), String> {
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(format!(
            "is {chars} characters long; names have at most {MAX_NAME_CHARS}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_up_to_the_limit_pass_and_longer_ones_say_both_lengths() {
        assert!(check_length(&"é".repeat(MAX_NAME_CHARS)).is_ok());
        let error = check_length(&"a".repeat(MAX_NAME_CHARS + 1)).unwrap_err();
        assert!(error.contains("156") && error.contains("155"), "{error}");
    }
}
