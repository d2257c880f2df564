//! The nesting depth of a CEL expression, counted on its characters before
//! any parser sees it.
//!
//! Depth is what drives the parser's recursion: each open bracket (`(`,
//! `[`, `{`), each `?` of a conditional (the grammar nests the else branch)
//! and each prefix operator (`!`, `-`) of a run like `!!!x` adds a level.
//! Strings (quoted, raw, triple-quoted, bytes) are skipped so that brackets
//! inside them do not count. The count runs in one pass with no recursion.

/// The deepest nesting of `source`, by the rules above.
pub(super) fn nesting_depth(source: &str) -> usize {
    let bytes = source.as_bytes();
    // One conditional counter per open bracket level, outermost first.
    let mut levels: Vec<usize> = vec![0];
    // The sum of `levels`, kept as they change.
    let mut conditionals = 0;
    let mut unary_run = 0;
    let mut after_operand = false;
    let mut deepest = 0;
    let mut i = 0;

    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'"' | b'\'' => {
                i = skip_string(bytes, i, false);
                after_operand = true;
                unary_run = 0;
                continue;
            }
            b'r' | b'R' | b'b' | b'B' if starts_string(bytes, i) => {
                i = skip_prefixed_string(bytes, i);
                after_operand = true;
                unary_run = 0;
                continue;
            }
            b'(' | b'[' | b'{' => {
                levels.push(0);
                after_operand = false;
                unary_run = 0;
            }
            b')' | b']' | b'}' => {
                if levels.len() > 1 {
                    conditionals -= levels.pop().expect("more than one level");
                }
                after_operand = true;
                unary_run = 0;
            }
            b'?' => {
                *levels
                    .last_mut()
                    .expect("the outermost level is never popped") += 1;
                conditionals += 1;
                after_operand = false;
                unary_run = 0;
            }
            b'!' | b'-' if !after_operand && !is_not_equal(bytes, i) => unary_run += 1,
            b if b.is_ascii_whitespace() => {}
            b if b.is_ascii_alphanumeric() || b == b'_' || b == b'`' || b == b'.' => {
                after_operand = true;
                unary_run = 0;
            }
            _ => {
                after_operand = false;
                unary_run = 0;
            }
        }
        let depth = levels.len() - 1 + conditionals + unary_run;
        deepest = deepest.max(depth);
        i += 1;
    }
    deepest
}

/// `!=` is a binary operator, never a prefix `!`.
fn is_not_equal(bytes: &[u8], i: usize) -> bool {
    bytes[i] == b'!' && bytes.get(i + 1) == Some(&b'=')
}

/// Whether a string literal with `r`/`b` prefixes (`r"`, `b'`, `br"`,
/// `rb'`) starts at `i`, and the prefix is not the tail of an identifier.
fn starts_string(bytes: &[u8], i: usize) -> bool {
    let ident_before = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
    if ident_before {
        return false;
    }
    let mut j = i;
    while j < bytes.len() && j < i + 2 && matches!(bytes[j], b'r' | b'R' | b'b' | b'B') {
        j += 1;
    }
    matches!(bytes.get(j), Some(b'"' | b'\''))
}

/// Skips a prefixed string literal; returns the index after it.
fn skip_prefixed_string(bytes: &[u8], mut i: usize) -> usize {
    let mut raw = false;
    while matches!(bytes[i], b'r' | b'R' | b'b' | b'B') {
        raw |= matches!(bytes[i], b'r' | b'R');
        i += 1;
    }
    skip_string(bytes, i, raw)
}

/// Skips a quoted string starting at the quote `bytes[i]`; returns the
/// index after its closing quote (or the end for an unterminated string,
/// which the parser then reports).
fn skip_string(bytes: &[u8], i: usize, raw: bool) -> usize {
    let quote = bytes[i];
    let triple = bytes.get(i + 1) == Some(&quote) && bytes.get(i + 2) == Some(&quote);
    let mut j = if triple { i + 3 } else { i + 1 };
    while j < bytes.len() {
        if bytes[j] == b'\\' && !raw {
            j += 2;
            continue;
        }
        if bytes[j] == quote {
            if !triple {
                return j + 1;
            }
            if bytes.get(j + 1) == Some(&quote) && bytes.get(j + 2) == Some(&quote) {
                return j + 3;
            }
        }
        j += 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::nesting_depth;

    #[test]
    fn counts_brackets_conditionals_and_prefix_runs() {
        let cases: &[(&str, usize)] = &[
            ("a", 0),
            ("(a)", 1),
            ("f(g(h(x)))", 3),
            ("[{'a': (1)}]", 3),
            ("a ? b : c ? d : e", 2),
            ("!!!a", 3),
            ("-(-a)", 2),
            ("a - b - c", 0),
            ("a != b", 0),
            ("'((((' + r\"))[[\" + '''(('''", 0),
            ("b'(('", 0),
            ("'\\'(('", 0),
            ("size(x)-1", 1),
        ];
        for (source, depth) in cases {
            assert_eq!(nesting_depth(source), *depth, "{source}");
        }
    }

    #[test]
    fn counts_ten_thousand_levels_without_recursion() {
        let source = format!("{}a{}", "(".repeat(10_000), ")".repeat(10_000));
        assert_eq!(nesting_depth(&source), 10_000);
    }
}
