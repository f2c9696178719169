//! Code generation: the function, unchanged but for its body, which starts a
//! `TimedCall` and completes it when the body's value is known.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Ident, ReturnType, Signature, Type};

use crate::args::Args;
use crate::item::{self, Body, TimedFn};
use crate::valid::{self, Detail, Errors, Plan};

/// `#[timed(args)] item`: the timed function, or the errors followed by the
/// unchanged item, so that the user sees only the real problem.
pub(crate) fn timed(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = match syn::parse2::<Args>(args) {
        Ok(mut args) => {
            if let Some(error) = args.errors.take() {
                errors.push(error);
            }
            Some(args)
        }
        Err(error) => {
            errors.push(error);
            None
        }
    };
    let function = match item::parse(item.clone()) {
        Ok(function) => Some(function),
        Err(error) => {
            errors.push(error);
            None
        }
    };
    let plan = match (&args, &function) {
        (Some(args), Some(function)) => match valid::check(args, function) {
            Ok(plan) => Some(plan),
            Err(error) => {
                errors.push(error);
                None
            }
        },
        _ => None,
    };
    match (errors.finish(), function, plan) {
        (
            Ok(()),
            Some(TimedFn {
                attrs,
                vis,
                sig,
                body: Ok(body),
            }),
            Some(plan),
        ) => {
            let body = timed_body(&sig, body, &plan);
            quote! { #(#attrs)* #vis #sig #body }
        }
        (Err(error), function, _) => {
            let error = error.to_compile_error();
            // Parameters used only in the detail are unused without it.
            let allow = function.map(|_| quote!(#[allow(unused_variables)]));
            quote! { #error #allow #item }
        }
        // Unreachable: a checked plan has a function with a body.
        _ => item,
    }
}

/// The new body: start the action, run the original body, complete.
fn timed_body(sig: &Signature, body: Body, plan: &Plan) -> TokenStream {
    let Body {
        brace,
        inner_attrs,
        stmts,
    } = body;
    let krate = &plan.krate;
    let call = Ident::new("__timed_call", Span::mixed_site());
    let result = Ident::new("__timed_result", Span::mixed_site());

    let category = &plan.category;
    let nested = plan.nested;
    let detail = match &plan.detail {
        Detail::Static(literal) => literal.to_token_stream(),
        Detail::Format(literal) => quote!(#krate::__private::format!(#literal)),
        Detail::FormatSelf {
            literal,
            name,
            receiver,
        } => quote!(#krate::__private::format!(#literal, #name = #receiver)),
    };
    let is_async = sig.asyncness.is_some();
    let start_fn = Ident::new(
        if is_async { "start_async" } else { "start" },
        Span::call_site(),
    );
    // `TimedCall` records where it was called from: for code a macro
    // generated, that is the `#[timed]` attribute, on the function.
    let start = quote! {
        let #call = #krate::__private::TimedCall::#start_fn(#category, #nested, || #detail);
    };

    let mut block = TokenStream::new();
    brace.surround(&mut block, |tokens| stmts.to_tokens(tokens));

    // Type errors in `complete_result` (a return type named `Result` that is
    // not `std`'s) point at the return type.
    let return_span = match &sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => sig.ident.span(),
    };
    let complete = if plan.err {
        let result = Ident::new("__timed_result", Span::mixed_site().located_at(return_span));
        quote_spanned!(return_span=> #call.complete_result(&#result);)
    } else {
        quote!(#call.complete();)
    };

    let new_body = if is_async {
        // The action starts at the first poll. Its own `async` block catches
        // `return` and `?`, so that `Cancelled` means the future was dropped.
        let fake_return = fake_return(sig);
        quote! {
            #start
            let #result = async move { #fake_return #block }.await;
            #complete
            #result
        }
    } else if plan.err {
        // A closure catches `return` and `?`, to see the `Result`.
        let fake_return = fake_return(sig);
        let (unsafe_block, unused_unsafe) = match &sig.unsafety {
            Some(unsafety) => (quote!(#unsafety), quote!(unused_unsafe,)),
            None => (TokenStream::new(), TokenStream::new()),
        };
        quote! {
            #start
            #[allow(#unused_unsafe unknown_lints, clippy::redundant_closure_call)]
            let #result = (move || #unsafe_block { #fake_return #block })();
            #complete
            #result
        }
    } else {
        // Dropping the call finishes the action: on return, `?` and panic.
        quote! {
            #start
            #block
        }
    };

    let mut tokens = TokenStream::new();
    brace.surround(&mut tokens, |tokens| {
        tokens.extend(inner_attrs.iter().map(ToTokens::to_token_stream));
        tokens.extend(new_body);
    });
    tokens
}

/// An unreachable `return` of the declared return type, first in a closure
/// or `async` block, so that its type is known before its body is checked:
/// `?` then knows what to convert errors into, and a wrong tail expression is
/// reported against the declared type.
fn fake_return(sig: &Signature) -> Option<TokenStream> {
    let (ty, span) = match &sig.output {
        ReturnType::Default => (quote!(()), sig.ident.span()),
        ReturnType::Type(_, ty) => {
            if matches!(**ty, Type::Never(_)) {
                return None;
            }
            let mut erased = (**ty).clone();
            ImplTraitEraser.visit_type_mut(&mut erased);
            (erased.into_token_stream(), ty.span())
        }
    };
    let fake = Ident::new("__timed_fake_return", Span::mixed_site().located_at(span));
    Some(quote_spanned! {span=>
        #[allow(
            unknown_lints,
            unreachable_code,
            clippy::diverging_sub_expression,
            clippy::empty_loop,
            clippy::let_unit_value,
            clippy::let_with_type_underscore,
            clippy::needless_return,
            clippy::unreachable
        )]
        if false {
            let #fake: #ty = loop {};
            return #fake;
        }
    })
}

/// `impl Trait` cannot be the type of a `let`: `_` stands in for it.
struct ImplTraitEraser;

impl VisitMut for ImplTraitEraser {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::ImplTrait(impl_trait) = ty {
            *ty = Type::Infer(syn::TypeInfer {
                underscore_token: syn::Token![_](impl_trait.impl_token.span),
            });
        } else {
            syn::visit_mut::visit_type_mut(self, ty);
        }
    }
}

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;

    fn expand(args: &str, item: &str) -> String {
        let args: TokenStream = args.parse().unwrap();
        let item: TokenStream = item.parse().unwrap();
        super::timed(args, item).to_string()
    }

    #[test]
    fn a_sync_function_without_err_runs_its_body_in_place() {
        let out = expand("category = \"SQL\"", "fn f(id: i64) -> i64 { id }");
        assert!(out.contains("TimedCall :: start (\"SQL\" , false"), "{out}");
        assert!(
            !out.contains("move ||"),
            "no closure around the body: {out}"
        );
        assert!(
            !out.contains("complete"),
            "the drop finishes the action: {out}"
        );
    }

    #[test]
    fn a_detail_without_placeholders_is_a_static_str() {
        let out = expand("detail = \"a {{b}}\"", "fn f() {}");
        assert!(out.contains("|| \"a {b}\""), "{out}");
        assert!(!out.contains("format"), "{out}");
    }

    #[test]
    fn a_detail_with_placeholders_is_formatted_through_the_core_crate() {
        let out = expand("detail = \"{id}\"", "fn f(id: i64) {}");
        assert!(
            out.contains("|| :: timeline_core :: __private :: format ! (\"{id}\")"),
            "{out}"
        );
    }

    #[test]
    fn crate_argument_replaces_the_core_path() {
        let out = expand("crate = my::tl", "async fn f() {}");
        assert!(
            out.contains("my :: tl :: __private :: TimedCall :: start_async"),
            "{out}"
        );
        assert!(!out.contains("timeline_core"), "{out}");
    }

    #[test]
    fn on_error_the_item_is_emitted_unchanged_after_the_errors() {
        let out = expand("bogus, nested, nested", "fn f() { body() }");
        assert_eq!(out.matches("compile_error").count(), 2, "{out}");
        assert!(out.ends_with("fn f () { body () }"), "{out}");
        assert!(!out.contains("TimedCall"), "{out}");
    }
}
