//! Text from outside (APIs, files, run folders) made safe to show: on a
//! terminal, control characters such as escape sequences could rewrite what
//! the reader sees. (HTML output is escaped by its template engine.)

/// `s` with every control character replaced by `?`.
pub fn terminal_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
