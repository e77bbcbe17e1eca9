//! mod_rewrite: the six `url.rewrite*` keys. The plain list runs on the request as sent (the
//! uri_raw phase), the "-if-not-file" list once the physical path is known and is not a
//! regular file; a rewrite restarts request processing with the new target. After a "once"
//! rule has rewritten, nothing is rewritten again for the request; "repeat" rules may go on,
//! up to lighttpd's loop limit, beyond which the request fails with 500.

use crate::config::urlrules::{self, Outcome, UrlParts, MAX_REWRITE_LOOPS};
use crate::config::ReqConf;

/// mod_rewrite's memory across the restarts of one request.
#[derive(Default)]
pub struct State {
    /// Passes since the first rewrite.
    loops: u16,
    rewritten: bool,
    /// A "once" rule has rewritten.
    finished: bool,
}

/// What the pipeline does next.
pub enum Step {
    GoOn,
    /// `out` is the new target: restart.
    Restart,
    /// 500: a loop, a result not starting with '/', or one that could not be built.
    Fail,
}

/// One pass over the plain list (`if_not_file` false) or the "-if-not-file" list.
pub fn pass(
    conf: &ReqConf,
    if_not_file: bool,
    st: &mut State,
    target: &str,
    cond_caps: &[Option<&str>],
    url: &UrlParts,
    out: &mut String,
) -> Step {
    let mut lists = conf
        .rewrite
        .iter()
        .filter(|(k, _)| k.if_not_file() == if_not_file)
        .peekable();
    if lists.peek().is_none() {
        return Step::GoOn;
    }
    if st.rewritten {
        st.loops = st.loops.saturating_add(1);
        if st.loops > MAX_REWRITE_LOOPS {
            log::warn!("url.rewrite: endless loop for {}", target.escape_debug());
            return Step::Fail;
        }
        if st.finished {
            return Step::GoOn;
        }
    }
    for (kind, rules) in lists {
        match urlrules::apply(rules, target, cond_caps, url, out) {
            Ok(Outcome::NoMatch) => continue,
            Ok(Outcome::Stop(_)) => return Step::GoOn,
            Ok(Outcome::Replaced(_)) if out.starts_with('/') => {
                st.rewritten = true;
                st.finished = !kind.repeats();
                return Step::Restart;
            }
            Ok(Outcome::Replaced(_)) => {
                log::warn!(
                    "{}: the result \"{}\" is not a path starting with '/'",
                    kind.key(),
                    out.escape_debug()
                );
                return Step::Fail;
            }
            Err(e) => {
                log::warn!("{}: {}", kind.key(), e);
                return Step::Fail;
            }
        }
    }
    Step::GoOn
}
