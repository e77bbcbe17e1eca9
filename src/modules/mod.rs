//! Request-time logic of the lighttpd modules: pure functions the request pipeline calls.

pub mod expire_rule;
pub mod subst;
