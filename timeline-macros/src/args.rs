//! Parsing the arguments of `#[timed(...)]`.
//!
//! Every argument keeps its original tokens, so that later checks can point
//! at them. A bad argument does not stop the parse: the parser skips to the
//! next comma and goes on, and all errors are reported together.

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Ident, LitStr, Path, Token};

mod kw {
    syn::custom_keyword!(category);
    syn::custom_keyword!(detail);
    syn::custom_keyword!(nested);
    syn::custom_keyword!(err);
}

/// What the arguments list offers, for "expected one of" messages.
const EXPECTED: &str = "`category = \"…\"`, `detail = \"…\"`, `nested`, `err` or `crate = path`";

/// The arguments of one `#[timed(...)]`, each with its original tokens.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) category: Option<LitStr>,
    pub(crate) detail: Option<LitStr>,
    pub(crate) nested: Option<kw::nested>,
    pub(crate) err: Option<kw::err>,
    /// `crate = path`: where `timeline_core` is, for crates that re-export it.
    pub(crate) krate: Option<Path>,
    /// Everything that was wrong, combined.
    pub(crate) errors: Option<syn::Error>,
}

/// One argument, as written.
enum Arg {
    Category(kw::category, LitStr),
    Detail(kw::detail, LitStr),
    Nested(kw::nested),
    Err(kw::err),
    Crate(Token![crate], Path),
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args::default();
        while !input.is_empty() {
            match input.parse::<Arg>() {
                Ok(arg) => args.add(arg),
                Err(error) => {
                    args.error(error);
                    skip_to_comma(input)?;
                }
            }
            if input.is_empty() {
                break;
            }
            if let Err(error) = input.parse::<Token![,]>() {
                args.error(syn::Error::new(
                    error.span(),
                    "expected `,` between the arguments of `#[timed]`",
                ));
                skip_to_comma(input)?;
                // The comma itself, if the skip stopped at one.
                let _ = input.parse::<Option<Token![,]>>()?;
            }
        }
        Ok(args)
    }
}

impl Args {
    fn error(&mut self, error: syn::Error) {
        match &mut self.errors {
            Some(errors) => errors.combine(error),
            None => self.errors = Some(error),
        }
    }

    fn add(&mut self, arg: Arg) {
        let duplicate = match arg {
            Arg::Category(keyword, value) => {
                set(&mut self.category, value).then_some((keyword.span, "category"))
            }
            Arg::Detail(keyword, value) => {
                set(&mut self.detail, value).then_some((keyword.span, "detail"))
            }
            Arg::Nested(keyword) => {
                set(&mut self.nested, keyword).then_some((keyword.span, "nested"))
            }
            Arg::Err(keyword) => set(&mut self.err, keyword).then_some((keyword.span, "err")),
            Arg::Crate(keyword, value) => {
                set(&mut self.krate, value).then_some((keyword.span, "crate"))
            }
        };
        if let Some((span, name)) = duplicate {
            self.error(syn::Error::new(
                span,
                format!("duplicate argument `{name}`: it may appear once; remove this one"),
            ));
        }
    }
}

/// Stores `value` unless the slot is taken; returns whether it was taken.
fn set<T>(slot: &mut Option<T>, value: T) -> bool {
    if slot.is_some() {
        return true;
    }
    *slot = Some(value);
    false
}

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let lookahead = input.lookahead1();
        if lookahead.peek(kw::category) {
            let keyword: kw::category = input.parse()?;
            let value = string_value(input, &keyword, "category", "SQL-main")?;
            if value.value().is_empty() {
                return Err(syn::Error::new(
                    value.span(),
                    "the category must not be empty: write a name such as `category = \"SQL-main\"`, \
                     or leave `category` out to use the function's name",
                ));
            }
            Ok(Arg::Category(keyword, value))
        } else if lookahead.peek(kw::detail) {
            let keyword: kw::detail = input.parse()?;
            let value = string_value(
                input,
                &keyword,
                "detail",
                "SELECT * FROM bug WHERE id = {id}",
            )?;
            Ok(Arg::Detail(keyword, value))
        } else if lookahead.peek(kw::nested) {
            let keyword: kw::nested = input.parse()?;
            no_value(input, "nested")?;
            Ok(Arg::Nested(keyword))
        } else if lookahead.peek(kw::err) {
            let keyword: kw::err = input.parse()?;
            no_value(input, "err")?;
            Ok(Arg::Err(keyword))
        } else if lookahead.peek(Token![crate]) {
            let keyword: Token![crate] = input.parse()?;
            let path = path_value(input, &keyword)?;
            Ok(Arg::Crate(keyword, path))
        } else if input.peek(Ident::peek_any) {
            let unknown = input.call(Ident::parse_any)?;
            Err(syn::Error::new(
                unknown.span(),
                format!("unknown argument `{unknown}` of `#[timed]`: expected one of {EXPECTED}"),
            ))
        } else {
            Err(lookahead.error())
        }
    }
}

/// `= "literal"` after `name`.
fn string_value(
    input: ParseStream<'_>,
    keyword: &dyn ToTokens,
    name: &str,
    example: &str,
) -> syn::Result<LitStr> {
    let write = format!("write `{name} = \"{example}\"`");
    if at_end_of_arg(input) {
        return Err(syn::Error::new_spanned(
            keyword,
            format!("missing value for `{name}`: {write}"),
        ));
    }
    if !input.peek(Token![=]) {
        let found = input.parse::<TokenTree>()?;
        return Err(syn::Error::new_spanned(
            found,
            format!("expected `=` after `{name}`: {write}"),
        ));
    }
    let eq: Token![=] = input.parse()?;
    if at_end_of_arg(input) {
        return Err(syn::Error::new(
            eq.span,
            format!("missing value after `{name} =`: {write}"),
        ));
    }
    if input.peek(LitStr) {
        return input.parse();
    }
    let value = rest_of_arg(input)?;
    Err(syn::Error::new_spanned(
        value,
        format!("`{name}` takes a string literal, not an expression or a constant: {write}"),
    ))
}

/// `= path` after `crate`.
fn path_value(input: ParseStream<'_>, keyword: &Token![crate]) -> syn::Result<Path> {
    const WRITE: &str = "write `crate = my_crate::timeline_core` (the path under which your crate \
                         re-exports `timeline_core`)";
    if at_end_of_arg(input) {
        return Err(syn::Error::new(
            keyword.span,
            format!("missing value for `crate`: {WRITE}"),
        ));
    }
    if !input.peek(Token![=]) {
        let found = input.parse::<TokenTree>()?;
        return Err(syn::Error::new_spanned(
            found,
            format!("expected `=` after `crate`: {WRITE}"),
        ));
    }
    let eq: Token![=] = input.parse()?;
    if at_end_of_arg(input) {
        return Err(syn::Error::new(
            eq.span,
            format!("missing value after `crate =`: {WRITE}"),
        ));
    }
    let value = rest_of_arg(input)?;
    syn::parse2::<Path>(value.clone())
        .map_err(|_| syn::Error::new_spanned(value, format!("`crate` takes a path: {WRITE}")))
}

/// A flag: nothing may follow it but the next argument.
fn no_value(input: ParseStream<'_>, name: &str) -> syn::Result<()> {
    if at_end_of_arg(input) {
        return Ok(());
    }
    let value = rest_of_arg(input)?;
    Err(syn::Error::new_spanned(
        value,
        format!("`{name}` takes no value: write `{name}` alone"),
    ))
}

fn at_end_of_arg(input: ParseStream<'_>) -> bool {
    input.is_empty() || input.peek(Token![,])
}

/// The tokens up to the next top-level comma (not included).
fn rest_of_arg(input: ParseStream<'_>) -> syn::Result<TokenStream> {
    input.step(|cursor| {
        let mut rest = *cursor;
        let mut tokens = TokenStream::new();
        while let Some((tree, next)) = rest.token_tree() {
            if matches!(&tree, TokenTree::Punct(punct) if punct.as_char() == ',') {
                break;
            }
            tokens.extend([tree]);
            rest = next;
        }
        Ok((tokens, rest))
    })
}

fn skip_to_comma(input: ParseStream<'_>) -> syn::Result<()> {
    rest_of_arg(input).map(drop)
}
