//! Parsing the item `#[timed]` is applied to: a function, with or without a
//! body (a trait method's declaration has none).
//!
//! The body is kept as tokens: it is re-emitted unchanged, and the compiler
//! reports any problem in it at its original spans.

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Attribute, Item, Signature, Token, Visibility, braced, token};

/// A function, as written.
pub(crate) struct TimedFn {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    pub(crate) body: Result<Body, Token![;]>,
}

/// A function's body: `{ #![inner] statements }`.
pub(crate) struct Body {
    pub(crate) brace: token::Brace,
    pub(crate) inner_attrs: Vec<Attribute>,
    pub(crate) stmts: TokenStream,
}

impl Parse for TimedFn {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let sig: Signature = input.parse()?;
        let body = if input.peek(Token![;]) {
            Err(input.parse()?)
        } else {
            let content;
            let brace = braced!(content in input);
            let inner_attrs = content.call(Attribute::parse_inner)?;
            let stmts = content.parse()?;
            Ok(Body {
                brace,
                inner_attrs,
                stmts,
            })
        };
        Ok(TimedFn {
            attrs,
            vis,
            sig,
            body,
        })
    }
}

/// Parses the item, or explains that `#[timed]` wants a function.
pub(crate) fn parse(item: TokenStream) -> syn::Result<TimedFn> {
    let fork = item.clone();
    syn::parse2::<TimedFn>(item).map_err(|error| not_a_function(fork).unwrap_or(error))
}

/// The error for an item that parses, but not as a function.
fn not_a_function(item: TokenStream) -> Option<syn::Error> {
    let item = syn::parse2::<Item>(item).ok()?;
    let (span, what, instead): (Span, &str, &str) = match &item {
        Item::Impl(item) => (
            item.impl_token.span,
            "an `impl` block",
            "put it on each method of the block that should be timed",
        ),
        Item::Trait(item) => (
            item.trait_token.span,
            "a trait",
            "put it on the trait's default methods, or on the methods of its impls",
        ),
        Item::Mod(item) => (
            item.mod_token.span,
            "a module",
            "put it on each function that should be timed",
        ),
        Item::Struct(item) => (item.struct_token.span, "a struct", "put it on a `fn`"),
        Item::Enum(item) => (item.enum_token.span, "an enum", "put it on a `fn`"),
        Item::Union(item) => (item.union_token.span, "a union", "put it on a `fn`"),
        Item::Const(item) => (item.const_token.span, "a constant", "put it on a `fn`"),
        Item::Static(item) => (item.static_token.span, "a static", "put it on a `fn`"),
        Item::Type(item) => (item.type_token.span, "a type alias", "put it on a `fn`"),
        Item::Use(item) => (
            item.use_token.span,
            "a `use` declaration",
            "put it on a `fn`",
        ),
        Item::ForeignMod(item) => (
            item.abi.extern_token.span,
            "an `extern` block",
            "functions without a body cannot be timed; time the Rust function that calls them",
        ),
        Item::Macro(item) => (
            item.mac.path.span(),
            "a macro invocation",
            "put it on the functions the macro defines",
        ),
        Item::Fn(_) => return None,
        _ => (item.span(), "this item", "put it on a `fn`"),
    };
    Some(syn::Error::new(
        span,
        format!("`#[timed]` applies to functions only, not to {what}: {instead}"),
    ))
}
