//! Request-time logic of the lighttpd modules: pure functions the request pipeline calls.

pub mod subst;
