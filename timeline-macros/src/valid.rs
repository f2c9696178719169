//! Semantic checks: what parses but cannot be timed. Turns the arguments and
//! the function into a [`Plan`] for the expansion, or into errors that point
//! at the offending tokens.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::{FnArg, Ident, LitStr, Pat, Path, ReturnType, Token, Type};

use crate::args::Args;
use crate::item::TimedFn;

/// Everything the expansion needs to know, checked.
pub(crate) struct Plan {
    /// The path of the core crate: `::timeline_core` unless `crate = …`.
    pub(crate) krate: Path,
    pub(crate) category: LitStr,
    pub(crate) detail: Detail,
    pub(crate) nested: bool,
    pub(crate) err: bool,
}

/// The detail of every call.
pub(crate) enum Detail {
    /// No placeholder: a `&'static str`, escapes (`{{`, `}}`) resolved.
    Static(LitStr),
    /// A format string whose placeholders name parameters, captured by
    /// `format!` itself.
    Format(LitStr),
    /// A format string that also names `self`: a keyword cannot be captured
    /// nor be a named argument of `format!`, so `{self}` is renamed to a
    /// name no parameter has, and the receiver passed under that name.
    FormatSelf {
        literal: LitStr,
        name: Ident,
        receiver: Token![self],
    },
}

/// Checks everything the arguments and the function must agree on.
pub(crate) fn check(args: &Args, function: &TimedFn) -> syn::Result<Plan> {
    let mut errors = Errors::default();
    let sig = &function.sig;

    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new(
            constness.span,
            "`#[timed]` cannot time a `const fn`: a call may run at compile time, where there is \
             no clock and no timeline; remove `const`, or remove `#[timed]`",
        ));
    }
    if let Err(semi) = &function.body {
        errors.push(syn::Error::new(
            semi.span,
            "`#[timed]` needs a function body: put it on the implementations of this method, or \
             give the method a default body",
        ));
    }
    if let Some(err) = &args.err {
        if !returns_result(&sig.output) {
            errors.push(match &sig.output {
                ReturnType::Default => syn::Error::new(
                    err.span,
                    format!(
                        "`err` records an `Err` return as the action's outcome, but `{}` returns \
                         `()`: remove `err`, or return a `Result<T, E>`",
                        sig.ident
                    ),
                ),
                ReturnType::Type(_, ty) => syn::Error::new_spanned(
                    ty,
                    "`err` needs a function returning `Result<T, E>` (or an alias named `Result`, \
                     such as `io::Result<T>`), with `E: Display`: remove `err`, or return a `Result`",
                ),
            });
        }
    }

    let detail = match &args.detail {
        None => Detail::Static(LitStr::new("", Span::call_site())),
        Some(literal) => match check_detail(literal, function) {
            Ok(detail) => detail,
            Err(error) => {
                errors.push(error);
                Detail::Static(LitStr::new("", Span::call_site()))
            }
        },
    };

    errors.finish()?;
    Ok(Plan {
        krate: args
            .krate
            .clone()
            .unwrap_or_else(|| syn::parse_quote!(::timeline_core)),
        category: args
            .category
            .clone()
            .unwrap_or_else(|| LitStr::new(&sig.ident.unraw().to_string(), sig.ident.span())),
        detail,
        nested: args.nested.is_some(),
        err: args.err.is_some(),
    })
}

#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// Whether the return type is written as a `Result`: its path ends in
/// `Result` (`Result<T, E>`, `io::Result<T>`, `anyhow::Result<T>`…).
fn returns_result(output: &ReturnType) -> bool {
    let ReturnType::Type(_, ty) = output else {
        return false;
    };
    let mut ty: &Type = ty;
    loop {
        match ty {
            Type::Paren(paren) => ty = &paren.elem,
            Type::Group(group) => ty = &group.elem,
            Type::Path(path) => {
                return path.qself.is_none()
                    && path
                        .path
                        .segments
                        .last()
                        .is_some_and(|segment| segment.ident == "Result");
            }
            _ => return false,
        }
    }
}

/// The names a detail may use: the receiver and every binding of the
/// parameters' patterns.
struct Params {
    receiver: Option<Token![self]>,
    bindings: Vec<Ident>,
}

impl Params {
    fn of(function: &TimedFn) -> Params {
        let mut params = Params {
            receiver: None,
            bindings: Vec::new(),
        };
        for input in &function.sig.inputs {
            match input {
                FnArg::Receiver(receiver) => params.receiver = Some(receiver.self_token),
                FnArg::Typed(typed) => bindings(&typed.pat, &mut params.bindings),
            }
        }
        params
    }

    fn contains(&self, name: &str) -> bool {
        self.bindings.iter().any(|ident| ident == name)
    }

    /// "`a`, `b`" or "`self`, `a`".
    fn list(&self) -> String {
        let receiver = self.receiver.map(|_| "`self`".to_owned());
        let bindings = self.bindings.iter().map(|ident| format!("`{ident}`"));
        receiver
            .into_iter()
            .chain(bindings)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The identifiers a parameter pattern binds.
fn bindings(pat: &Pat, out: &mut Vec<Ident>) {
    match pat {
        Pat::Ident(ident) => {
            out.push(ident.ident.clone());
            if let Some((_, sub)) = &ident.subpat {
                bindings(sub, out);
            }
        }
        Pat::Tuple(tuple) => tuple.elems.iter().for_each(|pat| bindings(pat, out)),
        Pat::TupleStruct(tuple) => tuple.elems.iter().for_each(|pat| bindings(pat, out)),
        Pat::Struct(strukt) => strukt
            .fields
            .iter()
            .for_each(|field| bindings(&field.pat, out)),
        Pat::Slice(slice) => slice.elems.iter().for_each(|pat| bindings(pat, out)),
        Pat::Reference(reference) => bindings(&reference.pat, out),
        Pat::Paren(paren) => bindings(&paren.pat, out),
        Pat::Type(typed) => bindings(&typed.pat, out),
        Pat::Or(or) => {
            if let Some(first) = or.cases.first() {
                bindings(first, out);
            }
        }
        _ => {}
    }
}

/// Checks the placeholders of a detail, and resolves a detail without any
/// to a plain string.
fn check_detail(literal: &LitStr, function: &TimedFn) -> syn::Result<Detail> {
    let params = Params::of(function);
    let fn_name = &function.sig.ident;
    let value = literal.value();
    let error = |message: String| syn::Error::new(literal.span(), message);

    // The detail without escapes, for when there is no placeholder, and the
    // format string with `{self}` renamed, for when there is.
    let mut unescaped = String::with_capacity(value.len());
    let mut format = String::with_capacity(value.len());
    let mut placeholders = 0;
    let mut uses_self = false;
    let self_name = (0..)
        .map(|n| format!("__timed_self{n}"))
        .find(|name| !params.contains(name))
        .unwrap_or_default();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                unescaped.push('{');
                format.push_str("{{");
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                unescaped.push('}');
                format.push_str("}}");
            }
            '}' => {
                return Err(error(
                    "unmatched `}` in the detail: write `}}` for a literal brace".to_owned(),
                ));
            }
            '{' => {
                let mut inner = String::new();
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '}' {
                        closed = true;
                        break;
                    }
                    if c == '{' {
                        break;
                    }
                    inner.push(c);
                }
                if !closed {
                    return Err(error(
                        "unmatched `{` in the detail: close the placeholder, as in `{id}`, or \
                         write `{{` for a literal brace"
                            .to_owned(),
                    ));
                }
                let (name, spec) = match inner.split_once(':') {
                    Some((name, spec)) => (name.trim(), Some(spec)),
                    None => (inner.trim(), None),
                };
                check_placeholder(name, &params, fn_name).map_err(error)?;
                placeholders += 1;
                format.push('{');
                if name == "self" {
                    uses_self = true;
                    format.push_str(&self_name);
                } else {
                    format.push_str(name);
                }
                if let Some(spec) = spec {
                    format.push(':');
                    format.push_str(spec);
                }
                format.push('}');
            }
            c => {
                unescaped.push(c);
                format.push(c);
            }
        }
    }

    Ok(
        match (placeholders, uses_self.then_some(params.receiver).flatten()) {
            (0, _) => Detail::Static(LitStr::new(&unescaped, literal.span())),
            (_, Some(receiver)) => Detail::FormatSelf {
                literal: LitStr::new(&format, literal.span()),
                name: Ident::new(&self_name, Span::call_site()),
                receiver,
            },
            (_, None) => Detail::Format(literal.clone()),
        },
    )
}

/// Checks the name of one `{name}` or `{name:spec}` placeholder.
fn check_placeholder(name: &str, params: &Params, fn_name: &Ident) -> Result<(), String> {
    let escape = "write `{{` and `}}` for literal braces";
    if name.is_empty() || name.bytes().all(|b| b.is_ascii_digit()) {
        let example = params
            .bindings
            .first()
            .map_or("id".to_owned(), Ident::to_string);
        return Err(format!(
            "the detail has no positional arguments: name a parameter, as in `{{{example}}}`, \
             instead of `{{{name}}}`; {escape}"
        ));
    }
    if name == "self" {
        return match params.receiver {
            Some(_) => Ok(()),
            None => Err(format!(
                "`{{self}}` in the detail names the receiver, but `{fn_name}` has no `self` \
                 parameter; {}",
                can_name(params, fn_name)
            )),
        };
    }
    if syn::parse_str::<Ident>(name).is_err() {
        return Err(format!(
            "`{{{name}}}` in the detail is not a parameter name: placeholders name parameters, \
             not expressions; {}; to show a field, take it as a parameter, or format it in \
             the `Display` of its type",
            can_name(params, fn_name)
        ));
    }
    if params.contains(name) {
        return Ok(());
    }
    Err(format!(
        "`{name}` is not a parameter of `{fn_name}`; {}, or {escape}",
        can_name(params, fn_name)
    ))
}

fn can_name(params: &Params, fn_name: &Ident) -> String {
    let list = params.list();
    if list.is_empty() {
        format!("`{fn_name}` has no parameters to name, so the detail can only be plain text")
    } else {
        format!("the detail can name {list}")
    }
}
