//! One boa context with a transformation's code loaded, and everything that
//! runs inside it: the sandboxed globals, console capture, error
//! classification and the conversions between JSON and JS values. Engines
//! live in worker processes (see `worker`); nothing here knows about them.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::rc::Rc;

use boa_engine::builtins::object::OrdinaryObject;
use boa_engine::builtins::promise::PromiseState;
use boa_engine::module::IdleModuleLoader;
use boa_engine::object::builtins::{JsArray, JsFunction, JsPromise};
use boa_engine::object::{IntegrityLevel, ObjectInitializer};
use boa_engine::property::{Attribute, PropertyKey};
use boa_engine::string::JsStrVariant;
use boa_engine::{
    js_string, Context, JsError, JsNativeError, JsObject, JsResult, JsString, JsValue,
    NativeFunction, Script as JsScript, Source,
};
use serde_json::map::Entry;
use serde_json::{Map, Value};

use super::{LogEntry, Script, TransformError, TransformFailure, TransformLimits, TransformOutput};

/// Bound on boa's VM value stack (boa's own default), which catches huge
/// spreads such as `f(...bigArray)` as well as deep recursion.
const VM_STACK_LIMIT: usize = 10 * 1024;
/// Nesting bound for converting results to JSON; the converter recurses on
/// the Rust stack.
const MAX_JSON_DEPTH: usize = 256;
/// Log entries kept per run, so a chatty loop cannot exhaust memory.
const MAX_LOG_ENTRIES: usize = 100;
/// Longest kept log message, in bytes.
const MAX_LOG_MESSAGE_BYTES: usize = 4096;
/// `console` methods that are captured.
const LOG_LEVELS: [&str; 5] = ["log", "info", "warn", "error", "debug"];

pub(super) type RunResult = Result<TransformOutput, TransformFailure>;

/// Called with every captured console entry as it is made, so that what a
/// run logged survives the run being killed.
pub(super) type LogForwarder = Box<dyn FnMut(&LogEntry)>;

/// Console output of the run on this thread. Thread-local because boa
/// closures cannot capture host state that is not traced by its GC.
#[derive(Default)]
struct LogCapture {
    entries: Vec<LogEntry>,
    forward: Option<LogForwarder>,
}

thread_local! {
    static LOGS: RefCell<LogCapture> = RefCell::default();
}

/// Sends every console entry made on this thread to `forward` too.
pub(super) fn forward_logs(forward: LogForwarder) {
    LOGS.with(|logs| logs.borrow_mut().forward = Some(forward));
}

fn take_logs() -> Vec<LogEntry> {
    LOGS.with(|logs| std::mem::take(&mut logs.borrow_mut().entries))
}

/// A loaded script and its registered handler. Not `Send`: it stays on the
/// thread that loaded it.
pub(super) struct Engine {
    context: Context,
    handler: JsFunction,
    limits: TransformLimits,
}

impl Engine {
    /// Evaluates the script's top-level code and finds its handler.
    pub(super) fn load(spec: &Script) -> Result<Engine, TransformError> {
        let mut context = sandboxed_context(&spec.limits)?;
        let handlers = JsObject::with_object_proto(context.intrinsics());
        install_globals(&mut context, &spec.env, &handlers)
            .map_err(|e| TransformError::Load(e.to_string()))?;
        let script = JsScript::parse(Source::from_bytes(&spec.code), None, &mut context)
            .map_err(|e| TransformError::Compile(e.to_string()))?;
        let evaluated = script.evaluate(&mut context);
        context.run_jobs();
        evaluated.map_err(|e| match classify(e, &spec.limits, &mut context) {
            TransformError::Threw(message) => {
                TransformError::Load(format!("top-level code threw: {message}"))
            }
            limit => limit,
        })?;
        let handler = handlers
            .get(js_string!("transform"), &mut context)
            .ok()
            .and_then(|value| value.as_object().cloned())
            .and_then(JsFunction::from_object)
            .ok_or(TransformError::MissingHandler)?;
        Ok(Engine {
            context,
            handler,
            limits: spec.limits.clone(),
        })
    }

    pub(super) fn limits(&self) -> &TransformLimits {
        &self.limits
    }

    /// Calls the handler on `request` (`{headers, body, query, path}`).
    pub(super) fn run(&mut self, request: Value, context: &Value) -> RunResult {
        take_logs();
        let result = self.execute(request, context);
        let logs = take_logs();
        match result {
            Ok(request) => Ok(TransformOutput { request, logs }),
            Err(error) => Err(TransformFailure { error, logs }),
        }
    }

    fn execute(&mut self, request: Value, context: &Value) -> Result<Value, TransformError> {
        let inbound = InboundRequest::from_json(request)?;
        let request = inbound.to_js(&mut self.context);
        let context = json_to_js(context, &mut self.context);
        let returned = self.handler.call(
            &JsValue::undefined(),
            &[request, context],
            &mut self.context,
        );
        // Drains promise jobs even after a throw so none leak into the next run.
        self.context.run_jobs();
        let returned = returned.map_err(|e| self.classify(e))?;
        let returned = self.settle(returned)?;
        let fields = self.returned_fields(&returned)?;
        let request = inbound.merge(fields)?;
        if serialized_len(&request) > self.limits.max_output_bytes {
            return Err(TransformError::OutputTooLarge(self.limits.max_output_bytes));
        }
        Ok(request)
    }

    /// Unwraps the promise returned by an `async` handler.
    fn settle(&mut self, value: JsValue) -> Result<JsValue, TransformError> {
        let Some(promise) = value
            .as_object()
            .and_then(|o| JsPromise::from_object(o.clone()).ok())
        else {
            return Ok(value);
        };
        match promise.state() {
            PromiseState::Fulfilled(value) => Ok(value),
            PromiseState::Rejected(reason) => Err(self.classify(JsError::from_opaque(reason))),
            PromiseState::Pending => Err(TransformError::InvalidResult(
                "handler returned a promise that never settled".into(),
            )),
        }
    }

    fn returned_fields(
        &mut self,
        returned: &JsValue,
    ) -> Result<Map<String, Value>, TransformError> {
        let budget = self.limits.max_output_bytes;
        let converted = JsonConverter::new(&mut self.context, budget).convert(returned);
        match converted {
            Ok(Some(Value::Object(fields))) => Ok(fields),
            Ok(_) => Err(TransformError::InvalidResult(format!(
                "handler returned {}, expected the request object",
                describe_kind(returned)
            ))),
            Err(ConvertError::Js(e)) => Err(self.classify(e)),
            Err(ConvertError::TooLarge) => Err(TransformError::OutputTooLarge(budget)),
            Err(ConvertError::Unserializable(reason)) => Err(TransformError::InvalidResult(
                format!("returned request cannot be serialized to JSON: {reason}"),
            )),
        }
    }

    fn classify(&mut self, error: JsError) -> TransformError {
        classify(error, &self.limits, &mut self.context)
    }
}

/// A context with no host capabilities and the runtime limits applied.
fn sandboxed_context(limits: &TransformLimits) -> Result<Context, TransformError> {
    // The default module loader resolves `import()` against the working directory.
    let mut context = Context::builder()
        .module_loader(Rc::new(IdleModuleLoader))
        .build()
        .map_err(|e| TransformError::Load(e.to_string()))?;
    let runtime = context.runtime_limits_mut();
    runtime.set_loop_iteration_limit(limits.max_loop_iterations);
    runtime.set_recursion_limit(limits.max_recursion);
    runtime.set_stack_size_limit(VM_STACK_LIMIT);
    Ok(context)
}

fn install_globals(
    context: &mut Context,
    env: &BTreeMap<String, String>,
    handlers: &JsObject,
) -> JsResult<()> {
    let hidden = Attribute::WRITABLE | Attribute::CONFIGURABLE;
    let console = console_object(context);
    context.register_global_property(js_string!("console"), console, hidden)?;
    let process = process_object(context, env)?;
    context.register_global_property(js_string!("process"), process, hidden)?;
    let add_handler =
        NativeFunction::from_copy_closure_with_captures(add_handler, handlers.clone());
    context.register_global_callable(js_string!("addHandler"), 2, add_handler)
}

/// `addHandler(event, fn)`: stores `fn` in `handlers` under the event name.
fn add_handler(
    _this: &JsValue,
    args: &[JsValue],
    handlers: &JsObject,
    context: &mut Context,
) -> JsResult<JsValue> {
    let event = args.first().and_then(JsValue::as_string);
    if event != Some(&js_string!("transform")) {
        let message = "addHandler: only the 'transform' event is supported";
        return Err(JsNativeError::typ().with_message(message).into());
    }
    let handler = args.get(1).cloned().unwrap_or_default();
    if !handler.is_callable() {
        let message = "addHandler: the handler must be a function";
        return Err(JsNativeError::typ().with_message(message).into());
    }
    handlers.set(js_string!("transform"), handler, true, context)?;
    Ok(JsValue::undefined())
}

fn console_object(context: &mut Context) -> JsObject {
    let mut console = ObjectInitializer::new(context);
    for level in LOG_LEVELS {
        let log = NativeFunction::from_copy_closure(move |_, args, context| {
            record_log(level, args, context).map(|()| JsValue::undefined())
        });
        console.function(log, js_string!(level), 0);
    }
    console.build()
}

/// `process` with a frozen `env`, so one event cannot alter what the next sees.
fn process_object(context: &mut Context, env: &BTreeMap<String, String>) -> JsResult<JsObject> {
    let env_object = JsObject::with_object_proto(context.intrinsics());
    for (name, value) in env {
        env_object.create_data_property_or_throw(
            js_string!(name.as_str()),
            js_string!(value.as_str()),
            context,
        )?;
    }
    env_object.set_integrity_level(IntegrityLevel::Frozen, context)?;
    let process = JsObject::with_object_proto(context.intrinsics());
    process.create_data_property_or_throw(js_string!("env"), env_object, context)?;
    Ok(process)
}

/// Records a console call for the current run (and forwards it), keeping at
/// most [`MAX_LOG_ENTRIES`] entries plus one marker saying that output was dropped.
fn record_log(level: &'static str, args: &[JsValue], context: &mut Context) -> JsResult<()> {
    let kept = LOGS.with(|logs| logs.borrow().entries.len());
    let entry = match kept {
        n if n > MAX_LOG_ENTRIES => return Ok(()),
        MAX_LOG_ENTRIES => LogEntry {
            level: "warn".into(),
            message: format!(
                "log limit of {MAX_LOG_ENTRIES} entries reached; further output dropped"
            ),
        },
        // Formatting may run user code (toJSON, getters, console calls):
        // never hold the capture borrowed meanwhile.
        _ => LogEntry {
            level: level.into(),
            message: format_log_message(args, context)?,
        },
    };
    LOGS.with(|logs| {
        let mut logs = logs.borrow_mut();
        if let Some(forward) = logs.forward.as_mut() {
            forward(&entry);
        }
        logs.entries.push(entry);
    });
    Ok(())
}

fn format_log_message(args: &[JsValue], context: &mut Context) -> JsResult<String> {
    let mut message = String::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            message.push(' ');
        }
        message.push_str(&describe_value(arg, context)?);
        if message.len() > MAX_LOG_MESSAGE_BYTES {
            break;
        }
    }
    truncate_at_char_boundary(&mut message, MAX_LOG_MESSAGE_BYTES);
    Ok(message)
}

fn truncate_at_char_boundary(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// Renders a value for logs and error messages: strings verbatim, errors as
/// `Name: message`, other objects as JSON.
fn describe_value(value: &JsValue, context: &mut Context) -> JsResult<String> {
    let object = match value {
        JsValue::String(text) => return Ok(rust_string(text)),
        JsValue::Object(object) => object,
        other => return Ok(other.display().to_string()),
    };
    if let Ok(native) = JsError::from_opaque(value.clone()).try_native(context) {
        return Ok(native.to_string());
    }
    if object.is_callable() {
        return Ok("[Function]".into());
    }
    match JsonConverter::new(context, MAX_LOG_MESSAGE_BYTES).convert(value) {
        Ok(Some(json)) => Ok(json.to_string()),
        Ok(None) => Ok("undefined".into()),
        Err(ConvertError::Js(e)) => Err(e),
        Err(ConvertError::TooLarge) => Ok("[Object too large to print]".into()),
        Err(ConvertError::Unserializable(reason)) => Ok(format!("[Object: {reason}]")),
    }
}

/// Maps an engine error to a [`TransformError`]; boa's runtime-limit errors
/// are told apart by their message, which is stable within boa 0.20.
fn classify(error: JsError, limits: &TransformLimits, context: &mut Context) -> TransformError {
    if let Some(native) = error.as_native().filter(|n| n.is_runtime_limit()) {
        return if native.message().contains("loop") {
            TransformError::LoopLimit(limits.max_loop_iterations)
        } else {
            TransformError::StackLimit(native.message().to_owned())
        };
    }
    let message = match error.as_opaque() {
        Some(value) => {
            describe_value(value, context).unwrap_or_else(|_| value.display().to_string())
        }
        None => error.to_string(),
    };
    TransformError::Threw(message)
}

fn describe_kind(value: &JsValue) -> &'static str {
    match value {
        JsValue::Undefined => "undefined",
        JsValue::Null => "null",
        JsValue::Boolean(_) => "a boolean",
        JsValue::String(_) => "a string",
        JsValue::Integer(_) | JsValue::Rational(_) => "a number",
        JsValue::BigInt(_) => "a bigint",
        JsValue::Symbol(_) => "a symbol",
        JsValue::Object(o) if o.is_array() => "an array",
        JsValue::Object(o) if o.is_callable() => "a function",
        JsValue::Object(_) => "an object whose toJSON() is not an object",
    }
}

// ---------------------------------------------------------------------------
// JSON <-> JS values
// ---------------------------------------------------------------------------

/// Converts JSON to a JS value. Unlike `JsValue::from_json`, objects get
/// shared shapes: about twice as fast to build (no per-object property
/// table), and the handler's property reads then hit boa's inline caches.
fn json_to_js(value: &Value, context: &mut Context) -> JsValue {
    match value {
        Value::Null => JsValue::null(),
        Value::Bool(b) => JsValue::from(*b),
        Value::Number(n) => match n.as_i64().and_then(|i| i32::try_from(i).ok()) {
            Some(int) => JsValue::from(int),
            None => n.as_f64().map_or(JsValue::nan(), JsValue::from),
        },
        Value::String(text) => js_string!(text.as_str()).into(),
        Value::Array(items) => {
            let items: Vec<JsValue> = items.iter().map(|item| json_to_js(item, context)).collect();
            JsArray::from_iter(items, context).into()
        }
        Value::Object(fields) => {
            let mut object = ObjectInitializer::with_native_data(OrdinaryObject, context);
            for (name, value) in fields {
                let value = json_to_js(value, object.context());
                object.property(js_string!(name.as_str()), value, Attribute::all());
            }
            object.build().into()
        }
    }
}

/// Decodes a JS string, escaping only lone surrogates (which UTF-8 cannot
/// hold). Most strings are ASCII and are copied as is; boa's own conversions
/// go char by char.
fn rust_string(text: &JsString) -> String {
    match text.as_str().variant() {
        JsStrVariant::Latin1(bytes) if bytes.is_ascii() => {
            String::from_utf8(bytes.to_vec()).unwrap_or_default()
        }
        _ => text
            .to_std_string()
            .unwrap_or_else(|_| text.to_std_string_escaped()),
    }
}

enum ConvertError {
    Js(JsError),
    TooLarge,
    Unserializable(&'static str),
}

impl From<JsError> for ConvertError {
    fn from(error: JsError) -> Self {
        ConvertError::Js(error)
    }
}

/// Converts JS values to `serde_json` following `JSON.stringify` rules.
/// Written by hand because boa's `JsValue::to_json` panics on `undefined` and
/// recurses forever on cycles. Every value is charged a lower bound of its
/// serialized size so that oversized results are abandoned early.
struct JsonConverter<'c> {
    context: &'c mut Context,
    /// Objects being converted, for cycle detection.
    stack: Vec<JsObject>,
    budget: usize,
}

impl<'c> JsonConverter<'c> {
    fn new(context: &'c mut Context, budget: usize) -> Self {
        Self {
            context,
            stack: Vec::new(),
            budget,
        }
    }

    fn charge(&mut self, bytes: usize) -> Result<(), ConvertError> {
        self.budget = self
            .budget
            .checked_sub(bytes)
            .ok_or(ConvertError::TooLarge)?;
        Ok(())
    }

    /// `None` for values JSON omits (`undefined`, functions, symbols).
    fn convert(&mut self, value: &JsValue) -> Result<Option<Value>, ConvertError> {
        match value.as_object() {
            Some(object) => match self.call_to_json(object)? {
                Some(replaced) => self.serialize(&replaced),
                None => self.serialize(value),
            },
            None => self.serialize(value),
        }
    }

    /// Calls `object.toJSON()` when present (e.g. `Date`).
    fn call_to_json(&mut self, object: &JsObject) -> Result<Option<JsValue>, ConvertError> {
        let method = object.get(js_string!("toJSON"), self.context)?;
        match method.as_callable() {
            Some(to_json) => Ok(Some(to_json.call(
                &object.clone().into(),
                &[],
                self.context,
            )?)),
            None => Ok(None),
        }
    }

    fn serialize(&mut self, value: &JsValue) -> Result<Option<Value>, ConvertError> {
        let json = match value {
            JsValue::Undefined | JsValue::Symbol(_) => return Ok(None),
            JsValue::Object(object) if object.is_callable() => return Ok(None),
            JsValue::Null => Value::Null,
            JsValue::Boolean(b) => Value::Bool(*b),
            JsValue::Integer(i) => Value::from(*i),
            JsValue::Rational(r) => number(*r),
            JsValue::String(text) => {
                let text = rust_string(text);
                self.charge(text.len() + 2)?;
                Value::String(text)
            }
            JsValue::BigInt(_) => return Err(ConvertError::Unserializable("BigInt value")),
            JsValue::Object(object) => self.object(object)?,
        };
        self.charge(1)?;
        Ok(Some(json))
    }

    fn object(&mut self, object: &JsObject) -> Result<Value, ConvertError> {
        if self.stack.iter().any(|seen| JsObject::equals(seen, object)) {
            return Err(ConvertError::Unserializable("circular reference"));
        }
        if self.stack.len() >= MAX_JSON_DEPTH {
            return Err(ConvertError::Unserializable("nested too deeply"));
        }
        self.stack.push(object.clone());
        let json = if object.is_array() {
            self.array(object)
        } else {
            self.record(object)
        };
        self.stack.pop();
        json
    }

    fn array(&mut self, array: &JsObject) -> Result<Value, ConvertError> {
        let len = array
            .get(js_string!("length"), self.context)?
            .to_length(self.context)?;
        // One comma per element: also rejects absurd sparse lengths up front.
        self.charge(usize::try_from(len).unwrap_or(usize::MAX).saturating_add(1))?;
        let mut items = Vec::with_capacity(len as usize);
        for index in 0..len {
            let item = array.get(index, self.context)?;
            items.push(self.convert(&item)?.unwrap_or(Value::Null));
        }
        Ok(Value::Array(items))
    }

    fn record(&mut self, object: &JsObject) -> Result<Value, ConvertError> {
        let mut fields = Map::new();
        for key in object.own_property_keys(self.context)? {
            let name = match &key {
                PropertyKey::String(name) => rust_string(name),
                PropertyKey::Index(index) => index.get().to_string(),
                PropertyKey::Symbol(_) => continue,
            };
            let Some(value) = self.enumerable_value(object, key)? else {
                continue;
            };
            if let Some(json) = self.convert(&value)? {
                self.charge(name.len() + 3)?;
                fields.insert(name, json);
            }
        }
        Ok(Value::Object(fields))
    }

    /// The value of an own enumerable property, read straight from ordinary
    /// objects' storage; accessors and exotic objects (proxies) go through `get`.
    fn enumerable_value(
        &mut self,
        object: &JsObject,
        key: PropertyKey,
    ) -> JsResult<Option<JsValue>> {
        let descriptor = object.borrow().properties().get(&key);
        match descriptor {
            Some(d) if d.enumerable() == Some(false) => Ok(None),
            Some(d) if d.is_data_descriptor() => Ok(Some(d.value().cloned().unwrap_or_default())),
            _ => object.get(key, self.context).map(Some),
        }
    }
}

/// JSON number for an f64: integral values print without a fraction (as
/// `JSON.stringify` does) and non-finite ones become `null`.
fn number(value: f64) -> Value {
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
    if value.fract() == 0.0 && value.abs() <= MAX_SAFE {
        Value::from(value as i64)
    } else {
        serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
    }
}

fn serialized_len(value: &Value) -> usize {
    struct Counter(usize);
    impl io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

// ---------------------------------------------------------------------------
// Request shape
// ---------------------------------------------------------------------------

/// The request handed to the handler, kept to fill in the fields the
/// handler's result leaves out.
struct InboundRequest {
    headers: Value,
    body: Value,
    query: String,
    parsed_query: Value,
    path: String,
}

impl InboundRequest {
    fn from_json(request: Value) -> Result<InboundRequest, TransformError> {
        let invalid = |message: &str| TransformError::InvalidInput(message.to_owned());
        let Value::Object(mut fields) = request else {
            return Err(invalid("the request must be a JSON object"));
        };
        let headers = match fields.remove("headers") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(headers)) => headers,
            Some(_) => return Err(invalid("headers must be an object")),
        };
        let query = match fields.remove("query") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(query)) => query,
            Some(_) => return Err(invalid("query must be a string")),
        };
        let path = match fields.remove("path") {
            None | Some(Value::Null) => "/".to_owned(),
            Some(Value::String(path)) => path,
            Some(_) => return Err(invalid("path must be a string")),
        };
        Ok(InboundRequest {
            headers: Value::Object(lowercase_names(headers)),
            body: fields.remove("body").unwrap_or(Value::Null),
            parsed_query: Value::Object(parse_query(&query)),
            query,
            path,
        })
    }

    fn to_js(&self, context: &mut Context) -> JsValue {
        let fields = [
            ("headers", json_to_js(&self.headers, context)),
            ("body", json_to_js(&self.body, context)),
            ("query", js_string!(self.query.as_str()).into()),
            ("parsed_query", json_to_js(&self.parsed_query, context)),
            ("path", js_string!(self.path.as_str()).into()),
        ];
        let mut request = ObjectInitializer::with_native_data(OrdinaryObject, context);
        for (name, value) in fields {
            request.property(js_string!(name), value, Attribute::all());
        }
        request.build().into()
    }

    /// Builds the outgoing request from the handler's result (see module docs).
    fn merge(self, mut returned: Map<String, Value>) -> Result<Value, TransformError> {
        let headers = match returned.remove("headers") {
            None => self.headers,
            Some(Value::Object(headers)) => Value::Object(normalize_headers(headers)?),
            Some(_) => return Err(invalid_result("request.headers must be an object")),
        };
        let path = match returned_string(&mut returned, "path")? {
            // The code is as untrusted as the sender: its path must stay
            // under the destination's too.
            Some(path) => {
                crate::forwarded_path::check(&path).map_err(|unsafe_path| {
                    invalid_result(&format!("request.path {unsafe_path}"))
                })?;
                path
            }
            None => self.path,
        };
        let query = returned_string(&mut returned, "query")?;
        let parsed = returned.remove("parsed_query");
        let (query, parsed_query) = resolve_query(self.query, self.parsed_query, query, parsed)?;
        let mut request = Map::new();
        request.insert("headers".into(), headers);
        request.insert("body".into(), returned.remove("body").unwrap_or(self.body));
        request.insert("query".into(), Value::String(query));
        request.insert("parsed_query".into(), parsed_query);
        request.insert("path".into(), Value::String(path));
        Ok(Value::Object(request))
    }
}

/// A changed `query` string wins; otherwise a changed `parsed_query` is
/// serialized into it. Returns the final query and its parsed form.
fn resolve_query(
    inbound: String,
    inbound_parsed: Value,
    query: Option<String>,
    parsed: Option<Value>,
) -> Result<(String, Value), TransformError> {
    let query = match (query, parsed) {
        (Some(query), _) if query != inbound => query,
        (_, Some(parsed)) if parsed != inbound_parsed => encode_query(&parsed)?,
        _ => return Ok((inbound, inbound_parsed)),
    };
    let parsed = Value::Object(parse_query(&query));
    Ok((query, parsed))
}

fn invalid_result(message: &str) -> TransformError {
    TransformError::InvalidResult(message.to_owned())
}

fn returned_string(
    fields: &mut Map<String, Value>,
    name: &str,
) -> Result<Option<String>, TransformError> {
    match fields.remove(name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(TransformError::InvalidResult(format!(
            "request.{name} must be a string"
        ))),
    }
}

fn lowercase_names(headers: Map<String, Value>) -> Map<String, Value> {
    headers
        .into_iter()
        .map(|(mut name, value)| {
            name.make_ascii_lowercase();
            (name, value)
        })
        .collect()
}

fn normalize_headers(headers: Map<String, Value>) -> Result<Map<String, Value>, TransformError> {
    let mut normalized = Map::new();
    for (mut name, value) in headers {
        let value = match value {
            Value::Null => continue,
            Value::String(text) => text,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                let message = format!("header '{name}' must be a string");
                return Err(TransformError::InvalidResult(message));
            }
        };
        name.make_ascii_lowercase();
        normalized.insert(name, Value::String(value));
    }
    Ok(normalized)
}

/// Parses `a=1&b=2&b=3` into `{a: "1", b: ["2", "3"]}`, percent-decoding
/// names and values and reading `+` as a space.
fn parse_query(query: &str) -> Map<String, Value> {
    let mut params = Map::new();
    for pair in query
        .trim_start_matches('?')
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = Value::String(decode_component(value));
        match params.entry(decode_component(name)) {
            Entry::Vacant(slot) => {
                slot.insert(value);
            }
            Entry::Occupied(mut slot) => match slot.get_mut() {
                Value::Array(values) => values.push(value),
                first => *first = Value::Array(vec![first.take(), value]),
            },
        }
    }
    params
}

/// Inverse of [`parse_query`]: arrays become repeated keys.
fn encode_query(parsed: &Value) -> Result<String, TransformError> {
    let Value::Object(params) = parsed else {
        return Err(invalid_result("request.parsed_query must be an object"));
    };
    let mut query = String::new();
    for (name, value) in params {
        let values = match value {
            Value::Array(values) => values.as_slice(),
            single => std::slice::from_ref(single),
        };
        for value in values {
            let text = match value {
                Value::String(text) => text.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            if !query.is_empty() {
                query.push('&');
            }
            let _ = write!(
                query,
                "{}={}",
                encode_component(name),
                encode_component(&text)
            );
        }
    }
    Ok(query)
}

fn decode_component(text: &str) -> String {
    let hex = |byte: Option<&u8>| byte.and_then(|b| (*b as char).to_digit(16));
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
            (b'%', Some(high), Some(low)) => {
                decoded.push((high * 16 + low) as u8);
                i += 2;
            }
            (b'+', _, _) => decoded.push(b' '),
            (byte, _, _) => decoded.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn encode_component(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    /// An engine on the test's thread: these tests are about what scripts
    /// see and return; tests/gateway/transform_sandbox.rs covers the processes.
    struct Loaded(RefCell<Engine>);

    impl Loaded {
        fn run(&self, request: &Value, context: &Value) -> RunResult {
            self.0.borrow_mut().run(request.clone(), context)
        }
    }

    fn script(code: &str, env: BTreeMap<String, String>, limits: TransformLimits) -> Script {
        Script {
            name: "test".into(),
            code: code.into(),
            env,
            limits,
        }
    }

    fn load(code: &str) -> Loaded {
        load_with(code, TransformLimits::default())
    }

    fn load_with(code: &str, limits: TransformLimits) -> Loaded {
        let engine = Engine::load(&script(code, BTreeMap::new(), limits))
            .unwrap_or_else(|e| panic!("load failed: {e}"));
        Loaded(RefCell::new(engine))
    }

    fn load_error(code: &str) -> TransformError {
        match Engine::load(&script(code, BTreeMap::new(), TransformLimits::default())) {
            Ok(_) => panic!("expected a load error"),
            Err(error) => error,
        }
    }

    fn sample_request() -> Value {
        json!({
            "headers": { "Content-Type": "application/json", "x-id": "42" },
            "body": { "id": 1, "items": [{ "sku": "a", "qty": 2 }] },
            "query": "a=1&b=two%20words&b=3",
            "path": "/webhooks/shop"
        })
    }

    fn run_ok(transformation: &Loaded, request: &Value) -> TransformOutput {
        transformation
            .run(request, &json!({ "connection": { "id": "conn_1" } }))
            .unwrap_or_else(|f| panic!("run failed: {} (logs {:?})", f.error, f.logs))
    }

    fn run_err(transformation: &Loaded) -> TransformFailure {
        match transformation.run(&sample_request(), &json!({})) {
            Ok(output) => panic!("expected a failure, got {}", output.request),
            Err(failure) => failure,
        }
    }

    const IDENTITY: &str = "addHandler('transform', (request) => request);";

    #[test]
    fn identity_passes_request_through_with_lowercased_headers() {
        let output = run_ok(&load(IDENTITY), &sample_request());
        assert_eq!(
            output.request,
            json!({
                "headers": { "content-type": "application/json", "x-id": "42" },
                "body": { "id": 1, "items": [{ "sku": "a", "qty": 2 }] },
                "query": "a=1&b=two%20words&b=3",
                "parsed_query": { "a": "1", "b": ["two words", "3"] },
                "path": "/webhooks/shop"
            })
        );
        assert!(output.logs.is_empty());
    }

    #[test]
    fn handler_sees_parsed_query_and_context() {
        let code = r#"addHandler('transform', (request, context) => {
            request.body = { b: request.parsed_query.b, a: request.parsed_query.a, conn: context.connection.id };
            return request;
        });"#;
        let output = run_ok(&load(code), &sample_request());
        assert_eq!(
            output.request["body"],
            json!({ "a": "1", "b": ["two words", "3"], "conn": "conn_1" })
        );
    }

    #[test]
    fn body_headers_path_and_query_can_change() {
        let code = r#"addHandler('transform', (request) => {
            request.body = { order: request.body.id, total: 10 * 2, ratio: 0.5, skipped: undefined };
            request.headers['X-Added'] = 'yes';
            request.headers['x-count'] = 3;
            request.headers['x-id'] = null;
            request.path = '/v2' + request.path;
            request.query = 'page=2&q=a+b';
            return request;
        });"#;
        let request = run_ok(&load(code), &sample_request()).request;
        assert_eq!(
            request["body"],
            json!({ "order": 1, "total": 20, "ratio": 0.5 })
        );
        assert_eq!(
            request["headers"],
            json!({ "content-type": "application/json", "x-added": "yes", "x-count": "3" })
        );
        assert_eq!(request["path"], "/v2/webhooks/shop");
        assert_eq!(request["query"], "page=2&q=a+b");
        assert_eq!(request["parsed_query"], json!({ "page": "2", "q": "a b" }));
    }

    #[test]
    fn query_string_wins_over_parsed_query() {
        let code = r#"addHandler('transform', (request) => {
            request.query = 'x=1';
            request.parsed_query = { y: '2' };
            return request;
        });"#;
        let request = run_ok(&load(code), &sample_request()).request;
        assert_eq!(request["query"], "x=1");
        assert_eq!(request["parsed_query"], json!({ "x": "1" }));
    }

    #[test]
    fn parsed_query_change_rewrites_query_when_query_untouched() {
        let code = r#"addHandler('transform', (request) => {
            request.parsed_query = { tag: ['a b', 'c&d'], n: 5 };
            return request;
        });"#;
        let request = run_ok(&load(code), &sample_request()).request;
        // In the order the script wrote the keys (JSON objects keep their order).
        assert_eq!(request["query"], "tag=a%20b&tag=c%26d&n=5");
        assert_eq!(
            request["parsed_query"],
            json!({ "n": "5", "tag": ["a b", "c&d"] })
        );
    }

    #[test]
    fn omitted_fields_keep_inbound_values() {
        let code = "addHandler('transform', (request) => ({ body: 'raw text', extra: 1 }));";
        let request = run_ok(&load(code), &sample_request()).request;
        assert_eq!(request["body"], "raw text");
        assert_eq!(request["path"], "/webhooks/shop");
        assert_eq!(request["headers"]["x-id"], "42");
        assert!(request.get("extra").is_none());
    }

    #[test]
    fn process_env_is_visible_and_frozen() {
        let env = BTreeMap::from([("API_KEY".to_owned(), "secret".to_owned())]);
        let code = r#"addHandler('transform', (request) => {
            process.env.API_KEY = 'changed';
            request.headers.authorization = 'Bearer ' + process.env.API_KEY;
            return request;
        });"#;
        let engine = Engine::load(&script(code, env, TransformLimits::default())).unwrap();
        let transformation = Loaded(RefCell::new(engine));
        let request = run_ok(&transformation, &sample_request()).request;
        assert_eq!(request["headers"]["authorization"], "Bearer secret");
    }

    #[test]
    fn console_levels_are_captured_in_order_and_reset_per_run() {
        let code = r#"addHandler('transform', (request) => {
            console.log('plain', 1, true);
            console.info({ a: [1, 2] });
            console.warn('warned', null, undefined);
            console.error(new TypeError('bad thing'));
            console.debug(() => 1);
            return request;
        });"#;
        let transformation = load(code);
        let expected = vec![
            ("log", "plain 1 true"),
            ("info", r#"{"a":[1,2]}"#),
            ("warn", "warned null undefined"),
            ("error", "TypeError: bad thing"),
            ("debug", "[Function]"),
        ];
        for _ in 0..2 {
            let logs = run_ok(&transformation, &sample_request()).logs;
            let logs: Vec<_> = logs
                .iter()
                .map(|l| (l.level.as_str(), l.message.as_str()))
                .collect();
            assert_eq!(logs, expected);
        }
    }

    #[test]
    fn log_volume_is_capped() {
        let code = r#"addHandler('transform', (request) => {
            const line = 'x'.repeat(10000);
            for (let i = 0; i < 300; i++) console.log(line);
            return request;
        });"#;
        let limits = TransformLimits {
            timeout: Duration::from_secs(10),
            ..TransformLimits::default()
        };
        let logs = run_ok(&load_with(code, limits), &sample_request()).logs;
        assert_eq!(logs.len(), MAX_LOG_ENTRIES + 1);
        assert_eq!(logs[0].message.len(), MAX_LOG_MESSAGE_BYTES);
        assert!(logs[MAX_LOG_ENTRIES].message.contains("log limit"));
    }

    #[test]
    fn throw_reports_message_and_earlier_logs() {
        let code = r#"addHandler('transform', (request) => {
            console.log('before');
            const x = undefined;
            return x.field;
        });"#;
        let transformation = load(code);
        let failure = run_err(&transformation);
        assert!(
            matches!(failure.error, TransformError::Threw(_)),
            "{:?}",
            failure.error
        );
        assert!(
            failure
                .error
                .to_string()
                .starts_with("handler threw: TypeError"),
            "{}",
            failure.error
        );
        assert_eq!(
            failure.logs,
            vec![LogEntry {
                level: "log".into(),
                message: "before".into()
            }]
        );
        // The worker survives a throw.
        assert!(matches!(
            run_err(&transformation).error,
            TransformError::Threw(_)
        ));
    }

    #[test]
    fn thrown_non_errors_are_described() {
        let transformation = load("addHandler('transform', () => { throw { code: 7 }; });");
        assert_eq!(
            run_err(&transformation).error.to_string(),
            r#"handler threw: {"code":7}"#
        );
        let transformation = load("addHandler('transform', () => { throw 'plain'; });");
        assert_eq!(
            run_err(&transformation).error.to_string(),
            "handler threw: plain"
        );
    }

    #[test]
    fn infinite_loop_hits_loop_limit_and_worker_recovers() {
        let code = r#"addHandler('transform', (request) => {
            if (request.body.spin) { console.log('spinning'); try { while (true) {} } catch (e) {} }
            return request;
        });"#;
        let limits = TransformLimits {
            max_loop_iterations: 100_000,
            ..TransformLimits::default()
        };
        let transformation = load_with(code, limits);
        let failure = transformation
            .run(&json!({ "body": { "spin": true } }), &json!({}))
            .unwrap_err();
        assert!(
            matches!(failure.error, TransformError::LoopLimit(100_000)),
            "{:?}",
            failure.error
        );
        assert!(failure
            .error
            .to_string()
            .starts_with("loop iteration limit exceeded"));
        assert_eq!(failure.logs.len(), 1);
        run_ok(&transformation, &json!({ "body": { "spin": false } }));
    }

    #[test]
    fn deep_recursion_is_stopped() {
        let code = r#"
            function down(n) { return n === 0 ? 0 : 1 + down(n - 1); }
            function viaMap(n) { return [n].map((m) => m === 0 ? 0 : viaMap(m - 1))[0]; }
            addHandler('transform', (request) => {
                request.body = request.body.map ? viaMap(1e6) : down(1e6);
                return request;
            });"#;
        let transformation = load(code);
        for map in [false, true] {
            let failure = transformation
                .run(&json!({ "body": { "map": map } }), &json!({}))
                .unwrap_err();
            assert!(
                matches!(failure.error, TransformError::StackLimit(_)),
                "{:?}",
                failure.error
            );
        }
        let code = "function f(n) { return n === 0 ? 0 : 1 + f(n - 1); }
            addHandler('transform', (r) => { r.body = f(200); return r; });";
        assert_eq!(run_ok(&load(code), &sample_request()).request["body"], 200);
    }

    #[test]
    fn non_object_returns_are_rejected() {
        let cases = [
            (
                "addHandler('transform', (r) => { r.body = 1; });",
                "handler returned undefined, expected the request object",
            ),
            (
                "addHandler('transform', () => null);",
                "handler returned null, expected the request object",
            ),
            (
                "addHandler('transform', () => 'text');",
                "handler returned a string, expected the request object",
            ),
            (
                "addHandler('transform', () => [1]);",
                "handler returned an array, expected the request object",
            ),
        ];
        for (code, message) in cases {
            let failure = run_err(&load(code));
            assert!(matches!(failure.error, TransformError::InvalidResult(_)));
            assert_eq!(failure.error.to_string(), message);
        }
    }

    #[test]
    fn invalid_request_fields_are_rejected() {
        let code = "addHandler('transform', (r) => { r.headers = 'x'; return r; });";
        assert_eq!(
            run_err(&load(code)).error.to_string(),
            "request.headers must be an object"
        );
        let code = "addHandler('transform', (r) => { r.body = { self: r }; return r; });";
        assert_eq!(
            run_err(&load(code)).error.to_string(),
            "returned request cannot be serialized to JSON: circular reference"
        );
    }

    #[test]
    fn a_path_leaving_the_destination_is_rejected() {
        for path in ["../x", "/../x", "/a/%2e%2e/%2e%2e/x", "/..;/x"] {
            let code =
                format!("addHandler('transform', (r) => {{ r.path = {path:?}; return r; }});");
            let failure = run_err(&load(&code));
            assert!(matches!(failure.error, TransformError::InvalidResult(_)));
            assert!(
                failure.error.to_string().starts_with("request.path \""),
                "{}",
                failure.error
            );
        }
    }

    #[test]
    fn oversized_output_is_rejected() {
        let code = "addHandler('transform', (r) => { r.body = 'x'.repeat(20000); return r; });";
        let limits = TransformLimits {
            max_output_bytes: 10_000,
            ..TransformLimits::default()
        };
        let failure = run_err(&load_with(code, limits));
        assert!(
            matches!(failure.error, TransformError::OutputTooLarge(10_000)),
            "{:?}",
            failure.error
        );
    }

    #[test]
    fn async_handlers_and_to_json_are_supported() {
        let code = r#"addHandler('transform', async (request) => {
            const when = await Promise.resolve(new Date(0));
            request.body = { when };
            return request;
        });"#;
        let request = run_ok(&load(code), &sample_request()).request;
        assert_eq!(
            request["body"],
            json!({ "when": "1970-01-01T00:00:00.000Z" })
        );
        let code = "addHandler('transform', async () => { throw new Error('nope'); });";
        assert_eq!(
            run_err(&load(code)).error.to_string(),
            "handler threw: Error: nope"
        );
    }

    #[test]
    fn globals_persist_within_a_worker() {
        let code = "let runs = 0; addHandler('transform', (r) => { r.body = ++runs; return r; });";
        let transformation = load(code);
        assert_eq!(
            run_ok(&transformation, &sample_request()).request["body"],
            1
        );
        assert_eq!(
            run_ok(&transformation, &sample_request()).request["body"],
            2
        );
    }

    #[test]
    fn load_errors_are_reported() {
        let error = load_error("addHandler('transform', (r) => {");
        assert!(matches!(error, TransformError::Compile(_)), "{error:?}");
        assert!(matches!(
            load_error("const x = 1;"),
            TransformError::MissingHandler
        ));
        let error = load_error("throw new Error('boom');");
        assert_eq!(
            error.to_string(),
            "load error: top-level code threw: Error: boom"
        );
        let error = load_error("addHandler('other', (r) => r);");
        assert!(
            error.to_string().contains("only the 'transform' event"),
            "{error}"
        );
    }

    #[test]
    fn no_host_capabilities_are_exposed() {
        let code = r#"addHandler('transform', async (request) => {
            let imported;
            try { await import('./Cargo.toml'); imported = 'loaded'; } catch (e) { imported = 'blocked'; }
            request.body = {
                require: typeof require, fetch: typeof fetch, XMLHttpRequest: typeof XMLHttpRequest,
                Deno: typeof Deno, Bun: typeof Bun, setTimeout: typeof setTimeout,
                processKeys: Object.keys(process), imported,
            };
            return request;
        });"#;
        let request = run_ok(&load(code), &sample_request()).request;
        assert_eq!(
            request["body"],
            json!({
                "require": "undefined", "fetch": "undefined", "XMLHttpRequest": "undefined",
                "Deno": "undefined", "Bun": "undefined", "setTimeout": "undefined",
                "processKeys": ["env"], "imported": "blocked"
            })
        );
    }

    #[test]
    fn query_components_round_trip() {
        assert_eq!(decode_component("a%20b+c%2"), "a b c%2");
        assert_eq!(decode_component("%E2%9C%93"), "✓");
        assert_eq!(encode_component("a b&✓"), "a%20b%26%E2%9C%93");
        assert_eq!(
            Value::Object(parse_query("?x&y=")),
            json!({ "x": "", "y": "" })
        );
    }
}
