//! Text in terminal columns, for the explain cards and the text report:
//! East Asian wide characters take two columns, and Japanese text wraps
//! between characters, by its line-breaking rules.

/// Columns a character takes in a terminal: 2 for East Asian wide and
/// fullwidth characters, else 1.
pub(crate) fn char_width(c: char) -> usize {
    let wide = matches!(c as u32,
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6);
    if wide {
        2
    } else {
        1
    }
}

/// Terminal columns of `s` (Japanese text takes two per character).
pub(crate) fn width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// `s` padded with spaces to `columns` terminal columns.
pub(crate) fn pad(s: &str, columns: usize) -> String {
    format!("{s}{}", " ".repeat(columns.saturating_sub(width(s))))
}

/// Characters a line must not start with, and must not end with (Japanese
/// line-breaking rules, with their ASCII look-alikes).
const NO_BREAK_BEFORE: &[char] = &[
    '、', '。', ')', '）', '」', '』', ',', '.', ':', ';', '!', '?', '・', 'ー', '〜', 'ぁ', 'ぃ',
    'ぅ', 'ぇ', 'ぉ', 'っ', 'ゃ', 'ゅ', 'ょ', 'ゎ', 'ァ', 'ィ', 'ゥ', 'ェ', 'ォ', 'ッ', 'ャ', 'ュ',
    'ョ', 'ヮ', 'ヵ', 'ヶ',
];
/// A space [`wrap`] never breaks at; printed as a plain space.
const NBSP: char = '\u{a0}';
const NO_BREAK_AFTER: &[char] = &['(', '（', '「', '『'];

/// Wraps `text` into lines of at most `columns` terminal columns: between
/// words separated by spaces, and between two characters of Japanese text,
/// never before closing punctuation or a small kana, after opening
/// punctuation, or at [`NBSP`]. A word longer than a line gets a line of
/// its own.
pub(crate) fn wrap(text: &str, columns: usize) -> Vec<String> {
    // Units that may not be split, each with whether a space precedes it.
    let mut units: Vec<(String, bool)> = Vec::new();
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() && c != NBSP {
            space = true;
            continue;
        }
        if let Some((prev, _)) = units.last_mut() {
            if space && c.is_ascii_digit() && holds_next_number(prev) {
                prev.push(' ');
                prev.push(c);
                space = false;
                continue;
            }
        }
        let glue = match units.last() {
            None => false,
            Some(_) if space => false,
            Some((prev, _)) => {
                let last = prev.chars().next_back().unwrap_or(' ');
                let ascii_run = char_width(c) == 1 && char_width(last) == 1;
                ascii_run || NO_BREAK_BEFORE.contains(&c) || NO_BREAK_AFTER.contains(&last)
            }
        };
        match units.last_mut() {
            Some((prev, _)) if glue => prev.push(c),
            _ => units.push((c.to_string(), space)),
        }
        space = false;
    }

    // Greedy, except that Japanese text prefers a break at a space or after
    // 。, else one of the weaker places of [`Break`], outside parentheses,
    // when that keeps the line at least half full.
    let mut lines = Vec::new();
    let mut line: Vec<(String, bool)> = Vec::new();
    for unit in units {
        line.push(unit);
        while line.len() > 1 && width(&join(&line)) > columns {
            let last = line.len() - 1;
            let good = |k: usize, wanted: Break| {
                let before = join(&line[..k]);
                // A space is always a good break (English stays greedy);
                // the others are sought outside parentheses only.
                let outside = before.matches('(').count() <= before.matches(')').count();
                break_kind(&line[k - 1].0, &line[k].0, line[k].1) >= wanted
                    && (line[k].1 || outside)
                    && width(&before) * 2 >= columns
            };
            let k = [Break::Strong, Break::Weak]
                .into_iter()
                .find_map(|wanted| (1..=last).rev().find(|&k| good(k, wanted)))
                .unwrap_or(last);
            let rest = line.split_off(k);
            lines.push(join(&line));
            line = rest;
        }
    }
    if !line.is_empty() {
        lines.push(join(&line));
    }
    lines.into_iter().map(|l| l.replace(NBSP, " ")).collect()
}

/// How good a place for a line break is, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Break {
    /// Between two Japanese characters: allowed, not sought.
    Any,
    /// After 、, before a Latin word or a parenthesis in Japanese text
    /// ("には" | "RSTで": a particle after the word stays with it), or where
    /// hiragana meets katakana or kanji ("ポートを" | "クライアント").
    Weak,
    /// At a space or after 。.
    Strong,
}

fn break_kind(prev: &str, next: &str, space_before: bool) -> Break {
    let a = prev.chars().next_back().unwrap_or(' ');
    let b = next.chars().next().unwrap_or(' ');
    if space_before || a == '。' {
        Break::Strong
    } else if a == '、'
        || (char_width(a) == 2 && a != '・' && (b.is_ascii_alphabetic() || b == '('))
        || (is_hiragana(a) && (is_katakana(b) || is_kanji(b)))
    {
        Break::Weak
    } else {
        Break::Any
    }
}

fn is_hiragana(c: char) -> bool {
    ('\u{3041}'..='\u{309F}').contains(&c)
}

fn is_katakana(c: char) -> bool {
    ('\u{30A1}'..='\u{30FA}').contains(&c)
}

fn is_kanji(c: char) -> bool {
    ('\u{4E00}'..='\u{9FFF}').contains(&c)
}

/// True when a space after `prev` must not break: "RFC 9293 3.10.7.1" stays
/// on one line.
fn holds_next_number(prev: &str) -> bool {
    let words: Vec<&str> = prev.split(' ').collect();
    match words.as_slice() {
        [.., last] if last.ends_with("RFC") => true,
        [.., rfc, number] => rfc.ends_with("RFC") && number.bytes().all(|b| b.is_ascii_digit()),
        _ => false,
    }
}

/// Units of [`wrap`] on one line.
fn join(units: &[(String, bool)]) -> String {
    let mut s = String::new();
    for (i, (unit, space_before)) in units.iter().enumerate() {
        if i > 0 && *space_before {
            s.push(' ');
        }
        s.push_str(unit);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::technique::builtin_by_name;

    #[test]
    fn wrap_breaks_between_words_and_japanese_characters() {
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(wrap("  aa   bb  ", 80), ["aa bb"]);
        assert_eq!(wrap("longword x", 4), ["longword", "x"]);
        assert_eq!(wrap("", 10), Vec::<String>::new());
        // Two columns per kana; no line starts with 。 or ends with (.
        assert_eq!(wrap("あいうえ。お", 6), ["あいう", "え。お"]);
        // ... and prefers a break after 。 or at a space to one inside a word.
        assert_eq!(wrap("あいう。えおかき", 10), ["あいう。", "えおかき"]);
        assert_eq!(wrap("あいう えおかき", 10), ["あいう", "えおかき"]);
        assert_eq!(wrap("あ。いうえおかき", 10), ["あ。いうえ", "おかき"]);
        assert_eq!(wrap("アプリケーション", 12), ["アプリケー", "ション"]);
        // Section numbers stay with their RFC; NBSP holds words together.
        assert_eq!(
            wrap("see RFC 9293 3.10.7 now", 12),
            ["see", "RFC 9293 3.10.7", "now"]
        );
        assert_eq!(wrap("a b\u{a0}c", 3), ["a", "b c"]);
        assert_eq!(wrap("あい(うえ)", 6), ["あい", "(うえ)"]);
        assert_eq!(wrap("TCPセグメント", 8), ["TCPセグ", "メント"]);
        assert_eq!(
            wrap("あいうえおかきRSTです", 20),
            ["あいうえおかき", "RSTです"]
        );
        assert_eq!(
            wrap("ポートにはRSTで応答する。", 20),
            ["ポートにはRSTで", "応答する。"]
        );
        assert_eq!(
            wrap("ポートをクライアントに", 14),
            ["ポートを", "クライアントに"]
        );
        assert_eq!(
            wrap("あいうえお。かきくけこRSTで", 24),
            ["あいうえお。", "かきくけこRSTで"]
        );
        // ... but not inside parentheses.
        assert_eq!(
            wrap("あいう(えお、かき)くけこさし", 20),
            ["あいう(えお、かき)く", "けこさし"]
        );
        for line in wrap(&builtin_by_name("fin").unwrap().teach["ja"].rule, 40) {
            assert!(width(&line) <= 40, "{line}");
            assert!(!line.starts_with(NO_BREAK_BEFORE), "{line}");
        }
    }
}
