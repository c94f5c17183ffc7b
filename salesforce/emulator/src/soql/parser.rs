//! Recursive-descent parser for the supported SOQL subset.
//!
//! ```text
//! select   := SELECT item (',' item)* FROM name [WHERE or] [ORDER BY order (',' order)*]
//!             [LIMIT int] [OFFSET int]
//! item     := path | COUNT '(' ')' | COUNT '(' path ')' [alias] | '(' select ')'   -- sub-query: top level only
//! or       := and (OR and)*
//! and      := unary (AND unary)*
//! unary    := NOT unary | '(' or ')' | path op literal | path [NOT] IN '(' literal (',' literal)* ')'
//!           | path LIKE literal
//! order    := path [ASC|DESC] [NULLS (FIRST|LAST)]
//! ```

use super::ast::{
    CmpOp, Cond, FieldSet, Literal, Name, OrderItem, Path, Query, RelativeDate, Select, SelectItem,
    Value,
};
use super::error::{Detail, SoqlError};
use super::lexer::{Tok, Token, tokenize};

/// Words Salesforce reserves; they cannot name a field or object.
const RESERVED: &[&str] = &[
    "AND", "ASC", "DESC", "EXCLUDES", "FIRST", "FROM", "GROUP", "HAVING", "IN", "INCLUDES", "LAST",
    "LIKE", "LIMIT", "NOT", "NULL", "NULLS", "OR", "SELECT", "WHERE", "WITH",
];

pub(crate) fn parse_query(text: &str) -> Result<Query, SoqlError> {
    let tokens = tokenize(text);
    if tokens[0].tok == Tok::Eof {
        return Err(SoqlError::MalformedQuery(Detail {
            reason: "SOQL statements cannot be empty or null".to_string(),
            location: None,
        }));
    }
    let mut parser = Parser {
        text,
        tokens,
        pos: 0,
    };
    let select = parser.select(true)?;
    parser.expect_eof()?;
    Ok(Query {
        text: text.to_string(),
        select,
    })
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.pos]
    }

    fn peek_tok(&self, n: usize) -> &Tok {
        let i = (self.pos + n).min(self.tokens.len() - 1);
        &self.tokens[i].tok
    }

    fn bump(&mut self) -> Token {
        let t = self.tokens[self.pos].clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn unexpected(&self, token: &Token) -> SoqlError {
        if let Tok::Error(e) = &token.tok {
            return (**e).clone();
        }
        SoqlError::malformed(
            self.text,
            token.offset,
            format!("unexpected token: '{}'", token.raw),
        )
    }

    fn unexpected_here(&self) -> SoqlError {
        self.unexpected(self.peek())
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.peek().is_kw(kw) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), SoqlError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.unexpected_here())
        }
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if &self.peek().tok == tok {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: &Tok) -> Result<(), SoqlError> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(self.unexpected_here())
        }
    }

    fn expect_eof(&self) -> Result<(), SoqlError> {
        if self.peek().tok == Tok::Eof {
            Ok(())
        } else {
            Err(self.unexpected_here())
        }
    }

    /// A non-reserved word.
    fn name(&mut self) -> Result<Name, SoqlError> {
        let token = self.peek();
        match &token.tok {
            Tok::Ident(w) if !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(w)) => {
                let name = Name {
                    name: w.clone(),
                    offset: token.offset,
                };
                self.bump();
                Ok(name)
            }
            _ => Err(self.unexpected_here()),
        }
    }

    fn path(&mut self) -> Result<Path, SoqlError> {
        let mut segments = vec![self.name()?];
        while self.eat(&Tok::Dot) {
            segments.push(self.name()?);
        }
        Ok(Path { segments })
    }

    fn select(&mut self, top: bool) -> Result<Select, SoqlError> {
        self.expect_kw("SELECT")?;
        let mut items = Vec::new();
        loop {
            let start = self.peek().clone();
            let item = self.item(top)?;
            if matches!(item, SelectItem::CountRows) && !items.is_empty() {
                return Err(self.unexpected(&start));
            }
            let count_rows = matches!(item, SelectItem::CountRows);
            items.push(item);
            if count_rows && self.peek().tok == Tok::Comma {
                return Err(self.unexpected_here());
            }
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        self.check_aggregates(&items)?;
        self.expect_kw("FROM")?;
        let from = self.name()?;
        let filter = if self.eat_kw("WHERE") {
            Some(self.or()?)
        } else {
            None
        };
        let mut order_by = Vec::new();
        if self.eat_kw("ORDER") {
            self.expect_kw("BY")?;
            loop {
                order_by.push(self.order_item()?);
                if !self.eat(&Tok::Comma) {
                    break;
                }
            }
        }
        let limit = if self.eat_kw("LIMIT") {
            Some(self.count()?)
        } else {
            None
        };
        let offset = if self.eat_kw("OFFSET") {
            Some(self.count()?)
        } else {
            None
        };
        Ok(Select {
            items,
            from,
            filter,
            order_by,
            limit,
            offset,
        })
    }

    /// `COUNT(field)` cannot be mixed with plain fields or sub-queries
    /// (there is no GROUP BY support).
    fn check_aggregates(&self, items: &[SelectItem]) -> Result<(), SoqlError> {
        if !items
            .iter()
            .any(|i| matches!(i, SelectItem::CountField { .. }))
        {
            return Ok(());
        }
        for item in items {
            let (written, offset) = match item {
                SelectItem::Field(p) => (p.written(), p.offset()),
                SelectItem::SubQuery(s) => (s.from.name.clone(), s.from.offset),
                SelectItem::Fields { offset, .. } => ("FIELDS".to_string(), *offset),
                SelectItem::CountField { .. } | SelectItem::CountRows => continue,
            };
            return Err(SoqlError::malformed(
                self.text,
                offset,
                format!("Field must be grouped or aggregated: {written}"),
            ));
        }
        Ok(())
    }

    fn item(&mut self, top: bool) -> Result<SelectItem, SoqlError> {
        let token = self.peek().clone();
        if token.tok == Tok::LParen {
            if !top {
                return Err(self.unexpected(&token));
            }
            self.bump();
            let sub = self.select(false)?;
            self.expect(&Tok::RParen)?;
            return Ok(SelectItem::SubQuery(Box::new(sub)));
        }
        if token.is_kw("FIELDS") && *self.peek_tok(1) == Tok::LParen {
            self.bump();
            self.bump();
            let arg = self.peek().clone();
            let which = if arg.is_kw("ALL") {
                FieldSet::All
            } else if arg.is_kw("STANDARD") {
                FieldSet::Standard
            } else if arg.is_kw("CUSTOM") {
                FieldSet::Custom
            } else {
                return Err(self.unexpected(&arg));
            };
            self.bump();
            self.expect(&Tok::RParen)?;
            return Ok(SelectItem::Fields {
                which,
                offset: token.offset,
            });
        }
        if token.is_kw("COUNT") && *self.peek_tok(1) == Tok::LParen {
            if !top {
                return Err(self.unexpected(&token));
            }
            self.bump();
            self.bump();
            if self.eat(&Tok::RParen) {
                return Ok(SelectItem::CountRows);
            }
            let path = self.path()?;
            self.expect(&Tok::RParen)?;
            let alias = match &self.peek().tok {
                Tok::Ident(w) if !w.eq_ignore_ascii_case("FROM") => Some(self.name()?),
                _ => None,
            };
            return Ok(SelectItem::CountField { path, alias });
        }
        Ok(SelectItem::Field(self.path()?))
    }

    fn order_item(&mut self) -> Result<OrderItem, SoqlError> {
        let path = self.path()?;
        let descending = if self.eat_kw("DESC") {
            true
        } else {
            self.eat_kw("ASC");
            false
        };
        let nulls_last = if self.eat_kw("NULLS") {
            if self.eat_kw("FIRST") {
                Some(false)
            } else if self.eat_kw("LAST") {
                Some(true)
            } else {
                return Err(self.unexpected_here());
            }
        } else {
            None
        };
        Ok(OrderItem {
            path,
            descending,
            nulls_last,
        })
    }

    /// A non-negative integer (LIMIT, OFFSET, LAST_N_DAYS:n).
    fn count(&mut self) -> Result<usize, SoqlError> {
        let token = self.peek().clone();
        match &token.tok {
            Tok::Number(raw) if raw.bytes().all(|b| b.is_ascii_digit()) => {
                let n = raw.parse().map_err(|_| self.unexpected(&token))?;
                self.bump();
                Ok(n)
            }
            _ => Err(self.unexpected(&token)),
        }
    }

    fn or(&mut self) -> Result<Cond, SoqlError> {
        let mut left = self.and()?;
        while self.eat_kw("OR") {
            let right = self.and()?;
            left = Cond::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Cond, SoqlError> {
        let mut left = self.unary()?;
        while self.eat_kw("AND") {
            let right = self.unary()?;
            left = Cond::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Cond, SoqlError> {
        if self.eat_kw("NOT") {
            return Ok(Cond::Not(Box::new(self.unary()?)));
        }
        if self.eat(&Tok::LParen) {
            let inner = self.or()?;
            self.expect(&Tok::RParen)?;
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Cond, SoqlError> {
        let path = self.path()?;
        let op_token = self.peek().clone();
        let op = match op_token.tok {
            Tok::Eq => Some(CmpOp::Eq),
            Tok::Ne => Some(CmpOp::Ne),
            Tok::Lt => Some(CmpOp::Lt),
            Tok::Gt => Some(CmpOp::Gt),
            Tok::Le => Some(CmpOp::Le),
            Tok::Ge => Some(CmpOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.bump();
            let value = self.literal()?;
            return Ok(Cond::Cmp { path, op, value });
        }
        if self.eat_kw("LIKE") {
            let pattern = self.literal()?;
            return Ok(Cond::Like { path, pattern });
        }
        let negated = self.eat_kw("NOT");
        if self.eat_kw("IN") {
            self.expect(&Tok::LParen)?;
            let mut values = vec![self.literal()?];
            while self.eat(&Tok::Comma) {
                values.push(self.literal()?);
            }
            self.expect(&Tok::RParen)?;
            return Ok(Cond::In {
                path,
                negated,
                values,
            });
        }
        Err(self.unexpected_here())
    }

    fn literal(&mut self) -> Result<Literal, SoqlError> {
        let token = self.peek().clone();
        let value = match &token.tok {
            Tok::Str(s) => Value::Str(s.clone()),
            Tok::Number(raw) => Value::Number(raw.parse().map_err(|_| self.unexpected(&token))?),
            Tok::Date(d) => Value::Date(*d),
            Tok::DateTime(dt) => Value::DateTime(*dt),
            Tok::Ident(w) => match w.to_ascii_uppercase().as_str() {
                "TRUE" => Value::Bool(true),
                "FALSE" => Value::Bool(false),
                "NULL" => Value::Null,
                "TODAY" => Value::Relative(RelativeDate::Today),
                "YESTERDAY" => Value::Relative(RelativeDate::Yesterday),
                "TOMORROW" => Value::Relative(RelativeDate::Tomorrow),
                "LAST_N_DAYS" | "NEXT_N_DAYS" => {
                    let last = w.eq_ignore_ascii_case("LAST_N_DAYS");
                    self.bump();
                    self.expect(&Tok::Colon)?;
                    let n_token = self.peek().clone();
                    let n = u32::try_from(self.count()?).map_err(|_| self.unexpected(&n_token))?;
                    let end = n_token.offset + n_token.raw.len();
                    return Ok(Literal {
                        value: Value::Relative(if last {
                            RelativeDate::LastNDays(n)
                        } else {
                            RelativeDate::NextNDays(n)
                        }),
                        offset: token.offset,
                        raw: self.text[token.offset..end].to_string(),
                    });
                }
                _ => return Err(self.unexpected(&token)),
            },
            _ => return Err(self.unexpected(&token)),
        };
        self.bump();
        Ok(Literal {
            value,
            offset: token.offset,
            raw: token.raw,
        })
    }
}
