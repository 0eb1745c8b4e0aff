//! The languages flagscan speaks: English and Japanese.

/// Language of the teaching texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Ja,
}

impl Lang {
    /// `"en"` or `"ja"`, as given to `--lang`.
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "en" => Some(Lang::En),
            "ja" => Some(Lang::Ja),
            _ => None,
        }
    }

    /// The language of the user's locale: see [`Lang::from_locale`].
    pub fn from_env() -> Lang {
        let var = |name: &str| std::env::var(name).ok();
        Lang::from_locale(
            var("LC_ALL").as_deref(),
            var("LC_MESSAGES").as_deref(),
            var("LANG").as_deref(),
        )
    }

    /// The language from the values of `LC_ALL`, `LC_MESSAGES` and `LANG`:
    /// the first one set to a non-empty value decides (POSIX precedence; an
    /// empty variable counts as unset), and a value starting with `ja`
    /// (`ja_JP.UTF-8`, `ja`) means Japanese. Anything else, or nothing set,
    /// means English.
    pub fn from_locale(
        lc_all: Option<&str>,
        lc_messages: Option<&str>,
        lang: Option<&str>,
    ) -> Lang {
        match [lc_all, lc_messages, lang]
            .into_iter()
            .flatten()
            .find(|v| !v.is_empty())
        {
            Some(v) if v.starts_with("ja") => Lang::Ja,
            _ => Lang::En,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lang_parse_code_and_locale() {
        assert_eq!(Lang::parse("en"), Some(Lang::En));
        assert_eq!(Lang::parse("ja"), Some(Lang::Ja));
        assert_eq!(Lang::parse("fr"), None);
        assert_eq!(Lang::parse(""), None);
        for l in [Lang::En, Lang::Ja] {
            assert_eq!(Lang::parse(l.code()), Some(l));
        }

        let ja = Some("ja_JP.UTF-8");
        assert_eq!(Lang::from_locale(None, None, None), Lang::En);
        assert_eq!(Lang::from_locale(None, None, ja), Lang::Ja);
        assert_eq!(Lang::from_locale(None, None, Some("ja")), Lang::Ja);
        assert_eq!(Lang::from_locale(None, None, Some("en_US.UTF-8")), Lang::En);
        assert_eq!(Lang::from_locale(None, ja, Some("en_US.UTF-8")), Lang::Ja);
        // LC_ALL wins over both, even when it says C.
        assert_eq!(Lang::from_locale(Some("C"), ja, ja), Lang::En);
        assert_eq!(Lang::from_locale(ja, Some("C"), Some("C")), Lang::Ja);
        // LC_MESSAGES wins over LANG.
        assert_eq!(Lang::from_locale(None, Some("C.UTF-8"), ja), Lang::En);
        // Empty counts as unset.
        assert_eq!(Lang::from_locale(Some(""), Some(""), ja), Lang::Ja);
        // Not a prefix match elsewhere in the value.
        assert_eq!(Lang::from_locale(None, None, Some("en_JA")), Lang::En);
    }
}
