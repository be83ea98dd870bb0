// The audience rule builder: edit the rules (docs/audiences.md) by clicking.
//
// The form's textarea stays the one source of truth that the form posts: the builder writes the
// JSON there after every change (and tells the live size estimate with a "rules-change" event),
// and follows the textarea when someone types JSON by hand. Without JavaScript, the textarea alone
// still works. What the builder offers (fields, operators, events, audiences) comes from the page,
// in data-options, built on the server from the rule language's own tables.
(function () {
  "use strict";

  var CONDITION_KINDS = [
    ["profile", "Profile"], ["event", "Event"], ["audience", "Audience"],
    ["consent", "Consent"], ["device", "Device"],
  ];
  var GROUP_KINDS = [["all", "All of"], ["any", "Any of"], ["none", "None of"]];
  var JOINERS = { all: "and", any: "or", none: "or" };
  var NUMERIC_OPS = ["gt", "gte", "lt", "lte", "between"];
  var TEXT_OPS = ["contains", "starts_with", "ends_with"];
  var TYPED_JSON_OPS = ["eq", "neq", "in", "not_in"];
  var CUSTOM = "__other__"; // the "Other…" choice of a picker (no field or event has this name)

  // -- small DOM helpers ------------------------------------------------------------------------

  function el(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      var value = attributes[name];
      if (value === undefined || value === null || value === false) return;
      if (name === "text") node.textContent = value;
      else if (name === "class") node.className = value;
      else node.setAttribute(name, value === true ? "" : value);
    });
    (children || []).forEach(function (child) {
      if (child) node.append(child);
    });
    return node;
  }

  function select(options, value, attributes) {
    var box = el("select", attributes);
    options.forEach(function (option) {
      box.append(el("option", { value: option[0], text: option[1] }));
    });
    box.value = value;
    return box;
  }

  function button(text, className, label) {
    return el("button", { type: "button", class: "btn btn-sm " + className, text: text, "aria-label": label });
  }

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  function clone(value) {
    return JSON.parse(JSON.stringify(value));
  }

  // -- the model: groups and conditions, to and from the rules document ---------------------------

  var nextId = 1;

  function group(kind, children) {
    return { id: nextId++, group: kind, children: children || [] };
  }

  function condition(kind, body) {
    return { id: nextId++, kind: kind, body: body };
  }

  function Unsupported(message) {
    this.message = message;
  }

  function nodeFrom(json) {
    if (!isObject(json) || Object.keys(json).length !== 1) throw new Unsupported("a node has one key");
    var kind = Object.keys(json)[0];
    var body = json[kind];
    if (kind === "all" || kind === "any") {
      if (!Array.isArray(body)) throw new Unsupported(kind + " holds a list");
      return group(kind, body.map(nodeFrom));
    }
    if (kind === "not") {
      // The builder's "none of" group is {"not": {"any": [...]}}, or {"not": node} for one.
      if (isObject(body) && Object.keys(body).length === 1 && Array.isArray(body.any)) {
        return group("none", body.any.map(nodeFrom));
      }
      return group("none", [nodeFrom(body)]);
    }
    var known = CONDITION_KINDS.some(function (pair) { return pair[0] === kind; });
    if (!known || !isObject(body)) throw new Unsupported("unknown node " + kind);
    return condition(kind, clone(body));
  }

  function rootFrom(document) {
    if (!isObject(document) || !("root" in document)) throw new Unsupported("no root");
    var root = nodeFrom(document.root);
    return root.group ? root : group("all", [root]);
  }

  function toJSON(node, path, elements) {
    var json = {};
    if (elements[node.id]) elements[node.id].setAttribute("data-path", path);
    if (!node.group) {
      // Property filters, aggregates and first/last lines carry their own paths too.
      if (elements[node.id]) {
        elements[node.id].querySelectorAll("[data-subpath]").forEach(function (line) {
          line.setAttribute("data-path", path + line.getAttribute("data-subpath"));
        });
      }
      json[node.kind] = node.body;
      return json;
    }
    if (node.group === "none") {
      if (node.children.length === 1) return { not: toJSON(node.children[0], path + ".not", elements) };
      return {
        not: {
          any: node.children.map(function (child, index) {
            return toJSON(child, path + ".not.any[" + index + "]", elements);
          }),
        },
      };
    }
    json[node.group] = node.children.map(function (child, index) {
      return toJSON(child, path + "." + node.group + "[" + index + "]", elements);
    });
    return json;
  }

  // -- incomplete conditions ----------------------------------------------------------------------
  //
  // A condition not filled in yet (no field, no value, no event): flagged where it stands, left
  // out of the JSON (so out of the estimate and of what the form saves), and saving waits until
  // it is completed or removed. An empty text is "no value" here; the rule language would take
  // it, but a profile field compared with "" never matches (docs/audiences.md, Missing values).

  function missingValue(value) {
    if (value === undefined || value === null || value === "") return true;
    if (Array.isArray(value)) return !value.length || value.some(missingValue);
    return false;
  }

  function comparisonGap(holder, noValue) {
    if (!holder.op || noValue.indexOf(holder.op) >= 0) return null;
    return missingValue(holder.value) ? "give a value" : null;
  }

  Builder.prototype.incompleteReason = function (node) {
    var body = node.body || {};
    var noValue = this.options.no_value;
    if (node.kind === "profile") {
      if (!body.field) return "choose a field";
      return comparisonGap(body, noValue);
    }
    if (node.kind === "event") {
      if (typeof body.name !== "string" || !body.name.trim()) return "choose an event";
      var where = Array.isArray(body.where) ? body.where : [];
      for (var index = 0; index < where.length; index++) {
        if (!where[index].property) return "name the property of filter " + (index + 1);
        if (comparisonGap(where[index], noValue)) return "give the value of filter " + (index + 1);
      }
      return null;
    }
    if (node.kind === "audience" && !body.id) return "choose an audience";
    return null;
  };

  // The tree without incomplete conditions, and without the groups they leave empty (null
  // when nothing is left). Nodes keep their ids, so their elements get the saved JSON's paths.
  Builder.prototype.complete = function (node) {
    if (!node.group) return this.incompleteReason(node) ? null : node;
    var children = node.children.map(this.complete, this).filter(Boolean);
    return children.length ? { id: node.id, group: node.group, children: children } : null;
  };

  Builder.prototype.incompleteConditions = function () {
    var found = [];
    var builder = this;
    (function walk(node) {
      if (node.group) node.children.forEach(walk);
      else if (builder.incompleteReason(node)) found.push(node);
    })(this.root);
    return found;
  };

  // Flag each incomplete condition with what it lacks (after every change, without a render).
  Builder.prototype.markIncomplete = function () {
    var builder = this;
    (function walk(node) {
      if (node.group) return node.children.forEach(walk);
      var box = builder.elements[node.id];
      if (!box) return;
      var reason = builder.incompleteReason(node);
      var note = box.querySelector(":scope > .rb-incomplete-note");
      box.classList.toggle("rb-incomplete", Boolean(reason));
      if (!reason) {
        if (note) note.remove();
        return;
      }
      box.removeAttribute("data-path"); // not in the JSON: no problem of the estimate is here
      if (!note) {
        note = el("p", { class: "rb-incomplete-note", role: "note" });
        box.append(note);
      }
      note.textContent = "Incomplete: " + reason + ". Not counted in the estimate and not saved.";
    })(this.root);
  };

  // -- the builder --------------------------------------------------------------------------------

  function Builder(container) {
    this.container = container;
    this.options = JSON.parse(container.getAttribute("data-options"));
    this.input = document.querySelector(container.getAttribute("data-input"));
    this.panel = this.input.closest("[data-json-panel]");
    this.elements = {};
    this.propertyCache = {};
    this.fieldIndex = {};
    var index = this.fieldIndex;
    this.options.fields.forEach(function (groupOfFields) {
      groupOfFields.options.forEach(function (option) { index[option.value] = option; });
    });
    this.notice = el("p", { class: "rb-notice", role: "status", hidden: true });
    this.tree = el("div", { class: "rb-tree" });
    container.replaceChildren(this.notice, this.tree);
    // Enter in a value box would submit (save) the whole form: in the builder it does nothing.
    container.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && event.target.tagName === "INPUT") event.preventDefault();
    });
  }

  Builder.prototype.start = function () {
    var text = this.input.value.trim();
    var loaded = false;
    if (text) {
      loaded = this.load(text);
    } else {
      this.root = group("all", [this.defaultCondition("profile")]);
      loaded = true;
    }
    this.container.hidden = false;
    if (loaded && this.panel && !this.panel.querySelector(".field-error")) this.panel.open = false;
    if (!loaded) this.root = this.root || group("all", []);
    this.render();
    if (!text) this.write();
    this.showServerErrors(document.getElementById("rule-errors"));

    var builder = this;
    this.input.addEventListener("input", function () {
      builder.load(builder.input.value);
      builder.render();
    });
  };

  // Follow hand-typed JSON; while it is not a document the builder can show, say so.
  Builder.prototype.load = function (text) {
    var root;
    try {
      root = rootFrom(JSON.parse(text));
    } catch (error) {
      this.container.classList.add("rb-stale");
      this.notice.hidden = false;
      this.notice.textContent = error instanceof SyntaxError
        ? "The JSON below does not parse yet; the builder follows it once it does."
        : "The builder cannot show this document (" + error.message + "); edit it as JSON.";
      return false;
    }
    this.root = root;
    this.container.classList.remove("rb-stale");
    this.notice.hidden = true;
    return true;
  };

  // After a change in the builder: the JSON into the textarea, and a nudge for the estimate.
  Builder.prototype.changed = function (isStructural) {
    if (isStructural) {
      this.errorPaths = []; // the paths moved; the next estimate names the problems again
      this.render();
    }
    this.write();
    this.markIncomplete();
    var stale = document.getElementById("rule-errors");
    if (stale) stale.replaceChildren();
  };

  // Only complete conditions reach the textarea: with none, it is empty (nothing to estimate).
  Builder.prototype.write = function () {
    var root = this.complete(this.root);
    this.input.value = root
      ? JSON.stringify({ version: 1, root: toJSON(root, "$.root", this.elements) }, null, 2)
      : "";
    this.input.dispatchEvent(new CustomEvent("rules-change", { bubbles: true }));
  };

  Builder.prototype.render = function () {
    var focused = document.activeElement && document.activeElement.getAttribute("data-focus");
    this.elements = {};
    this.tree.replaceChildren(this.renderGroup(this.root, null));
    var root = this.complete(this.root);
    if (root) toJSON(root, "$.root", this.elements); // paths on the elements, for error marks
    this.markIncomplete();
    if (focused) {
      var again = this.tree.querySelector('[data-focus="' + focused + '"]');
      if (again) again.focus();
    }
    this.markErrors(this.errorPaths || []);
  };

  // -- groups ---------------------------------------------------------------------------------

  Builder.prototype.renderGroup = function (node, parent) {
    var builder = this;
    var box = el("div", { class: "rb-group rb-group-" + node.group });
    this.elements[node.id] = box;
    var kind = select(GROUP_KINDS, node.group, {
      class: "rb-group-kind", "aria-label": "Match", "data-focus": node.id + "-kind",
    });
    kind.addEventListener("change", function () {
      node.group = kind.value;
      builder.changed(true);
    });
    var addCondition = button("+ Condition", "btn-secondary rb-add-condition", "Add a condition");
    addCondition.addEventListener("click", function () {
      node.children.push(builder.defaultCondition("profile"));
      builder.changed(true);
    });
    var addGroup = button("+ Group", "btn-ghost rb-add-group", "Add a group");
    addGroup.addEventListener("click", function () {
      var inner = node.group === "all" ? "any" : "all";
      node.children.push(group(inner, [builder.defaultCondition("profile")]));
      builder.changed(true);
    });
    var actions = el("div", { class: "rb-group-actions" }, [addCondition, addGroup]);
    if (parent) {
      var remove = button("Remove group", "btn-danger-ghost rb-remove", "Remove this group");
      remove.addEventListener("click", function () {
        parent.children.splice(parent.children.indexOf(node), 1);
        builder.changed(true);
      });
      actions.append(remove);
    }
    var head = el("div", { class: "rb-group-head" }, [
      kind, el("span", { class: "rb-group-caption", text: "the following" }), actions,
    ]);
    var list = el("ul", { class: "rb-children", "data-joiner": JOINERS[node.group] });
    node.children.forEach(function (child) {
      var item = child.group ? builder.renderGroup(child, node) : builder.renderCondition(child, node);
      list.append(el("li", { class: "rb-item" }, [item]));
    });
    box.append(head, node.children.length ? list
      : el("p", { class: "rb-empty", text: "No conditions yet: add one." }));
    return box;
  };

  // -- conditions -----------------------------------------------------------------------------

  Builder.prototype.defaultCondition = function (kind) {
    var options = this.options;
    var body = {
      profile: { field: "country", op: "eq", value: "" },
      event: { name: options.events[0] || "" },
      audience: { id: options.audiences.length ? options.audiences[0].id : 0, in: true },
      consent: { purpose: "email_marketing", allowed: true },
      device: { has_active: true },
    }[kind];
    return condition(kind, body);
  };

  Builder.prototype.renderCondition = function (node, parent) {
    var builder = this;
    var box = el("div", { class: "rb-condition rb-condition-" + node.kind });
    this.elements[node.id] = box;
    var kind = select(CONDITION_KINDS, node.kind, {
      class: "rb-kind", "aria-label": "Condition type", "data-focus": node.id + "-type",
    });
    kind.addEventListener("change", function () {
      var fresh = builder.defaultCondition(kind.value);
      node.kind = fresh.kind;
      node.body = fresh.body;
      builder.changed(true);
    });
    var remove = button("×", "btn-ghost rb-remove", "Remove this condition");
    remove.addEventListener("click", function () {
      parent.children.splice(parent.children.indexOf(node), 1);
      builder.changed(true);
    });
    var row = el("div", { class: "rb-row" }, [kind]);
    var extra = [];
    this["edit_" + node.kind](node, row, extra);
    box.append(el("div", { class: "rb-main" }, [row, remove]));
    extra.forEach(function (line) { box.append(line); });
    return box;
  };

  // A select of known names with "Other…" that reveals a text input for any name.
  Builder.prototype.picker = function (node, name, choices, value, labels, onPick) {
    var builder = this;
    var known = choices.some(function (choice) {
      var options = choice.group ? choice.options : [choice];
      return options.some(function (option) { return option[0] === value; });
    });
    var isCustom = !known && (Boolean(value) || !choices.length);
    var box = el("select", { class: "rb-" + name, "aria-label": labels.select, "data-focus": node.id + "-" + name });
    choices.forEach(function (choice) {
      if (choice.group) {
        var optgroup = el("optgroup", { label: choice.group });
        choice.options.forEach(function (option) {
          optgroup.append(el("option", { value: option[0], text: option[1] }));
        });
        box.append(optgroup);
      } else {
        box.append(el("option", { value: choice[0], text: choice[1] }));
      }
    });
    box.append(el("option", { value: CUSTOM, text: labels.other }));
    box.value = isCustom ? CUSTOM : value;
    var text = el("input", {
      type: "text", class: "rb-" + name + "-custom", placeholder: labels.placeholder,
      "aria-label": labels.placeholder, hidden: !isCustom, value: isCustom ? value : "",
      "data-focus": node.id + "-" + name + "-custom",
    });
    box.addEventListener("change", function () {
      if (box.value === CUSTOM) {
        text.hidden = false;
        text.focus();
        return;
      }
      onPick(box.value, true);
    });
    text.addEventListener("input", function () { onPick(text.value.trim(), false); });
    text.addEventListener("change", function () { builder.changed(true); });
    return [box, text];
  };

  Builder.prototype.fieldType = function (name) {
    var option = this.fieldIndex[name];
    if (option) return { type: option.type, jsonType: option.json_type };
    if (/^tags\..+/.test(name) || /^traits\.[^.]+(\.[^.]+)*$/.test(name)) return { type: "json" };
    return { type: "text" };
  };

  Builder.prototype.edit_profile = function (node, row) {
    var builder = this;
    var body = node.body;
    var fieldChoices = this.options.fields.filter(function (fields) { return fields.options.length; })
      .map(function (fields) {
        return {
          group: fields.group,
          options: fields.options.map(function (option) { return [option.value, option.label]; }),
        };
      });
    var field = this.picker(node, "field", fieldChoices, body.field, {
      select: "Field", other: "Other tag or trait…", placeholder: "tags.key or traits.path",
    }, function (value, isStructural) {
      var before = builder.fieldType(body.field).type;
      body.field = value;
      var type = builder.fieldType(value).type;
      var ops = builder.options.operators[type];
      if (ops.indexOf(body.op) < 0) {
        body.op = ops[0];
        delete body.value;
      } else if (type !== before) {
        delete body.value;
      }
      fixValue(body, "value", body.op, builder);
      builder.changed(isStructural);
    });
    field.forEach(function (control) { row.append(control); });
    var info = this.fieldType(body.field);
    row.append(this.operatorSelect(node, body, "op", this.options.operators[info.type], function () {
      fixValue(body, "value", body.op, builder);
    }));
    this.valueControls(node.id + "-value", body, "value", info.type, body.op, info.jsonType)
      .forEach(function (control) { row.append(control); });
  };

  Builder.prototype.operatorSelect = function (node, holder, key, ops, after, name) {
    var builder = this;
    var labels = this.options.operator_labels;
    var box = select(ops.map(function (op) { return [op, labels[op] || op]; }), holder[key], {
      class: "rb-op", "aria-label": "Operator", "data-focus": node.id + "-" + (name || key),
    });
    box.addEventListener("change", function () {
      holder[key] = box.value;
      if (after) after();
      builder.changed(true);
    });
    return box;
  };

  // -- values, typed by the field's type and the operator --------------------------------------

  function fixValue(holder, key, op, builder) {
    var value = holder[key];
    if (builder.options.no_value.indexOf(op) >= 0) delete holder[key];
    else if ((op === "in" || op === "not_in") && !Array.isArray(value)) delete holder[key];
    else if (op === "between" && !(Array.isArray(value) && value.length === 2)) delete holder[key];
    else if (op !== "in" && op !== "not_in" && op !== "between" && Array.isArray(value)) delete holder[key];
  }

  function jsonKindOf(value, seenType) {
    if (typeof value === "number") return "number";
    if (typeof value === "boolean") return "boolean";
    if (typeof value === "string") return "string";
    if (Array.isArray(value) && value.length) return jsonKindOf(value[0], seenType);
    return seenType === "number" || seenType === "boolean" ? seenType : "string";
  }

  function convert(text, kind) {
    if (kind === "number") {
      var number = Number(text);
      return text.trim() !== "" && isFinite(number) ? number : text;
    }
    if (kind === "boolean") return text === "true" ? true : text === "false" ? false : text;
    return text;
  }

  function toLocalInput(value) {
    if (typeof value !== "string" || !/^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(value)) return "";
    var parsed = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : value + "Z");
    return isNaN(parsed) ? value.slice(0, 16) : parsed.toISOString().slice(0, 16);
  }

  // The input for one scalar: its HTML type, how it shows a value, how it reads one back.
  function scalarInput(kind) {
    if (kind === "number") return { type: "number", step: "any", show: String, read: function (text) { return convert(text, "number"); } };
    if (kind === "date") return { type: "date", show: String, read: String };
    if (kind === "datetime") {
      return {
        type: "datetime-local", show: toLocalInput,
        read: function (text) { return text ? text + ":00Z" : text; },
      };
    }
    return { type: "text", show: String, read: String };
  }

  // How each JSON value compares (text, number, true/false), chosen per holder of a value.
  var jsonKinds = new WeakMap();

  Builder.prototype.valueControls = function (focus, holder, key, type, op, seenType) {
    var builder = this;
    if (!op || this.options.no_value.indexOf(op) >= 0) return [];
    var controls = [];
    var scalarKind = type;
    if (type === "json") {
      if (NUMERIC_OPS.indexOf(op) >= 0) scalarKind = "number";
      else if (TEXT_OPS.indexOf(op) >= 0) scalarKind = "text";
      else {
        var jsonKind = jsonKinds.get(holder) || jsonKindOf(holder[key], seenType);
        var as = select([["string", "text"], ["number", "number"], ["boolean", "true/false"]], jsonKind, {
          class: "rb-json-kind", "aria-label": "Compare as", "data-focus": focus + "-as",
        });
        as.addEventListener("change", function () {
          jsonKinds.set(holder, as.value);
          delete holder[key];
          builder.changed(true);
        });
        controls.push(as);
        scalarKind = jsonKind === "string" ? "text" : jsonKind;
      }
    }
    if (type === "datetime" && op === "on") scalarKind = "date";
    if (op === "within_last" || op === "within_next") scalarKind = "days";

    if (op === "in" || op === "not_in") {
      var list = el("input", {
        type: "text", class: "rb-value rb-value-list", placeholder: "a, b, c",
        "aria-label": "Values, separated by commas", "data-focus": focus,
        value: Array.isArray(holder[key]) ? holder[key].join(", ") : "",
      });
      list.addEventListener("input", function () {
        var items = list.value.split(",").map(function (item) { return item.trim(); })
          .filter(function (item) { return item !== ""; });
        holder[key] = items.map(function (item) { return convert(item, scalarKind === "text" ? "string" : scalarKind); });
        builder.changed(false);
      });
      return controls.concat([list]);
    }
    if (scalarKind === "boolean") {
      var truth = select([["true", "true"], ["false", "false"]], String(holder[key] === false ? false : true), {
        class: "rb-value", "aria-label": "Value", "data-focus": focus,
      });
      if (typeof holder[key] !== "boolean") holder[key] = true;
      truth.addEventListener("change", function () {
        holder[key] = truth.value === "true";
        builder.changed(false);
      });
      return controls.concat([truth]);
    }
    if (scalarKind === "days") {
      var days = el("input", {
        type: "number", min: "1", step: "1", class: "rb-value rb-value-days", "aria-label": "Days",
        "data-focus": focus, value: typeof holder[key] === "number" ? String(holder[key]) : "",
      });
      days.addEventListener("input", function () {
        if (days.value === "") delete holder[key];
        else holder[key] = convert(days.value, "number");
        builder.changed(false);
      });
      return controls.concat([days, el("span", { class: "rb-word", text: "days" })]);
    }
    var input = scalarInput(scalarKind);
    if (op === "between") {
      var pair = Array.isArray(holder[key]) ? holder[key] : ["", ""];
      var ends = [0, 1].map(function (index) {
        var end = el("input", {
          type: input.type, step: input.step, class: "rb-value rb-value-" + (index ? "high" : "low"),
          "aria-label": index ? "To" : "From", "data-focus": focus + "-" + index,
          value: pair[index] === "" || pair[index] === undefined ? "" : input.show(pair[index]),
        });
        end.addEventListener("input", function () {
          var current = Array.isArray(holder[key]) ? holder[key] : ["", ""];
          current[index] = input.read(end.value);
          holder[key] = current;
          builder.changed(false);
        });
        return end;
      });
      return controls.concat([ends[0], el("span", { class: "rb-word", text: "and" }), ends[1]]);
    }
    var single = el("input", {
      type: input.type, step: input.step, class: "rb-value", "aria-label": "Value",
      "data-focus": focus,
      value: holder[key] === undefined || holder[key] === null ? "" : input.show(holder[key]),
    });
    single.addEventListener("input", function () {
      if (single.value === "" && input.type !== "text") delete holder[key];
      else holder[key] = input.read(single.value);
      builder.changed(false);
    });
    var suffix = type === "datetime" && op !== "on" ? el("span", { class: "rb-word", text: "UTC" }) : null;
    return controls.concat(suffix ? [single, suffix] : [single]);
  };

  // -- events -----------------------------------------------------------------------------------

  Builder.prototype.properties = function (name, then) {
    var cache = this.propertyCache;
    if (!name) return then([]);
    if (cache[name]) return then(cache[name]);
    var url = this.options.event_properties_url + "?name=" + encodeURIComponent(name);
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : { properties: [] }; })
      .then(function (body) {
        cache[name] = body.properties;
        then(body.properties);
      })
      .catch(function () { then([]); });
  };

  Builder.prototype.edit_event = function (node, row, extra) {
    var builder = this;
    var body = node.body;
    var names = this.options.events.map(function (name) { return [name, name]; });
    this.picker(node, "event-name", names, body.name, {
      select: "Event", other: "Other event…", placeholder: "Event name",
    }, function (value, isStructural) {
      body.name = value;
      builder.changed(isStructural);
    }).forEach(function (control) { row.append(control); });

    var count = body.count || { op: "gte", value: 1 };
    var countOp = select(this.options.count_ops, count.op, {
      class: "rb-count-op", "aria-label": "How many times", "data-focus": node.id + "-count-op",
    });
    countOp.addEventListener("change", function () {
      var value = countOp.value === "between" ? [1, 2] : (Array.isArray(count.value) ? 1 : count.value);
      body.count = { op: countOp.value, value: value };
      builder.changed(true);
    });
    row.append(countOp);
    var countValues = count.op === "between" ? count.value : [count.value];
    countValues.forEach(function (value, index) {
      if (index) row.append(el("span", { class: "rb-word", text: "and" }));
      var box = el("input", {
        type: "number", min: "0", step: "1", class: "rb-count-value", "aria-label": "Times",
        value: String(value), "data-focus": node.id + "-count-" + index,
      });
      box.addEventListener("input", function () {
        var typed = convert(box.value, "number");
        var current = body.count || { op: count.op, value: count.value };
        if (current.op === "between") current.value[index] = typed;
        else current.value = typed;
        body.count = current;
        builder.changed(false);
      });
      row.append(box);
    });
    row.append(el("span", { class: "rb-word", text: "times" }));

    var windowKind = !body.within ? "ever" : ("between" in body.within ? "between" : "last");
    var when = select([["ever", "at any time"], ["last", "in the last"], ["between", "between"]], windowKind, {
      class: "rb-window", "aria-label": "When", "data-focus": node.id + "-window",
    });
    when.addEventListener("change", function () {
      if (when.value === "ever") delete body.within;
      else if (when.value === "last") body.within = { last: 30, unit: "days" };
      else body.within = { between: ["", ""] };
      builder.changed(true);
    });
    row.append(when);
    if (windowKind === "last") {
      var amount = el("input", {
        type: "number", min: "1", step: "1", class: "rb-window-last", "aria-label": "How many",
        value: String(body.within.last), "data-focus": node.id + "-window-last",
      });
      amount.addEventListener("input", function () {
        body.within.last = convert(amount.value, "number");
        builder.changed(false);
      });
      var unit = select(this.options.time_units.map(function (name) { return [name, name]; }),
        body.within.unit || "days",
        { class: "rb-window-unit", "aria-label": "Unit", "data-focus": node.id + "-window-unit" });
      unit.addEventListener("change", function () {
        body.within.unit = unit.value;
        builder.changed(false);
      });
      row.append(amount, unit);
    } else if (windowKind === "between") {
      var range = scalarInput("datetime");
      [0, 1].forEach(function (index) {
        if (index) row.append(el("span", { class: "rb-word", text: "and" }));
        var end = el("input", {
          type: "datetime-local", class: "rb-window-between", "aria-label": index ? "Until" : "From",
          value: range.show(body.within.between[index]), "data-focus": node.id + "-window-" + index,
        });
        end.addEventListener("input", function () {
          body.within.between[index] = range.read(end.value);
          builder.changed(false);
        });
        row.append(end);
      });
      row.append(el("span", { class: "rb-word", text: "UTC" }));
    }

    var listId = "rb-properties-" + node.id;
    var datalist = el("datalist", { id: listId });
    var propertyTypes = {};
    this.properties(body.name, function (properties) {
      datalist.replaceChildren.apply(datalist, properties.map(function (property) {
        propertyTypes[property.path] = property.type;
        return el("option", { value: property.path, text: property.type });
      }));
    });
    extra.push(datalist);
    (body.where || []).forEach(function (filter, index) {
      extra.push(builder.whereLine(node, filter, index, listId, propertyTypes));
    });
    if (body.aggregate) extra.push(this.aggregateLine(node, listId));
    ["first", "last"].forEach(function (bound) {
      if (body[bound]) extra.push(builder.boundLine(node, bound));
    });
    extra.push(this.eventAdders(node));
  };

  Builder.prototype.subLine = function (node, label, subpath, controls, onRemove) {
    var builder = this;
    var remove = button("×", "btn-ghost rb-remove", "Remove");
    remove.addEventListener("click", function () {
      onRemove();
      builder.changed(true);
    });
    return el("div", { class: "rb-sub", "data-subpath": subpath }, [
      el("span", { class: "rb-sub-label", text: label }),
      el("div", { class: "rb-row" }, controls), remove,
    ]);
  };

  Builder.prototype.propertyInput = function (node, holder, listId, name, placeholder) {
    var builder = this;
    var input = el("input", {
      type: "text", list: listId, class: "rb-property", placeholder: placeholder,
      "aria-label": "Property", value: holder.property || "", "data-focus": node.id + "-" + name,
    });
    input.addEventListener("input", function () {
      holder.property = input.value.trim();
      builder.changed(false);
    });
    return input;
  };

  Builder.prototype.whereLine = function (node, filter, index, listId, propertyTypes) {
    var builder = this;
    var jsonOps = this.options.operators.json;
    var controls = [
      this.propertyInput(node, filter, listId, "where-" + index, "property"),
      this.operatorSelect(node, filter, "op", jsonOps, function () {
        fixValue(filter, "value", filter.op, builder);
      }, "where-op-" + index),
    ].concat(this.valueControls(
      node.id + "-where-value-" + index, filter, "value", "json", filter.op,
      propertyTypes[filter.property]
    ));
    return this.subLine(node, "where", ".event.where[" + index + "]", controls, function () {
      node.body.where.splice(index, 1);
      if (!node.body.where.length) delete node.body.where;
    });
  };

  Builder.prototype.aggregateLine = function (node, listId) {
    var builder = this;
    var aggregate = node.body.aggregate;
    var fn = select(this.options.aggregates.map(function (name) { return [name, name]; }), aggregate.fn, {
      class: "rb-aggregate-fn", "aria-label": "Aggregate", "data-focus": node.id + "-aggregate-fn",
    });
    fn.addEventListener("change", function () {
      aggregate.fn = fn.value;
      builder.changed(false);
    });
    var controls = [
      fn, el("span", { class: "rb-word", text: "of" }),
      this.propertyInput(node, aggregate, listId, "aggregate-property", "numeric property"),
      this.operatorSelect(node, aggregate, "op", this.options.aggregate_ops, function () {
        fixValue(aggregate, "value", aggregate.op, builder);
      }, "aggregate-op"),
    ].concat(this.valueControls(node.id + "-aggregate-value", aggregate, "value", "number", aggregate.op));
    return this.subLine(node, "with", ".event.aggregate", controls, function () {
      delete node.body.aggregate;
    });
  };

  Builder.prototype.boundLine = function (node, bound) {
    var builder = this;
    var holder = node.body[bound];
    var op = select([["before", "before"], ["after", "after"]], holder.op, {
      class: "rb-bound-op", "aria-label": "Before or after", "data-focus": node.id + "-" + bound + "-op",
    });
    op.addEventListener("change", function () {
      holder.op = op.value;
      builder.changed(false);
    });
    var input = scalarInput("datetime");
    var moment = el("input", {
      type: "datetime-local", class: "rb-bound-value", "aria-label": "Time",
      value: input.show(holder.value), "data-focus": node.id + "-" + bound + "-value",
    });
    moment.addEventListener("input", function () {
      holder.value = input.read(moment.value);
      builder.changed(false);
    });
    var label = bound === "first" ? "first time" : "last time";
    return this.subLine(node, label, ".event." + bound, [op, moment, el("span", { class: "rb-word", text: "UTC" })],
      function () { delete node.body[bound]; });
  };

  Builder.prototype.eventAdders = function (node) {
    var builder = this;
    var body = node.body;
    var adders = [];
    var where = button("+ Property filter", "btn-ghost rb-add-where", "Add a property filter");
    where.addEventListener("click", function () {
      body.where = body.where || [];
      body.where.push({ property: "", op: "eq", value: "" });
      builder.changed(true);
    });
    adders.push(where);
    if (!body.aggregate) {
      var aggregate = button("+ Sum, average, min or max", "btn-ghost rb-add-aggregate", "Add an aggregate");
      aggregate.addEventListener("click", function () {
        body.aggregate = { fn: "sum", property: "", op: "gte", value: 0 };
        builder.changed(true);
      });
      adders.push(aggregate);
    }
    if (!body.first || !body.last) {
      var bound = button("+ First or last time", "btn-ghost rb-add-bound", "Add a first or last time");
      bound.addEventListener("click", function () {
        body[body.first ? "last" : "first"] = { op: "after", value: "" };
        builder.changed(true);
      });
      adders.push(bound);
    }
    return el("div", { class: "rb-adders" }, adders);
  };

  // -- audience, consent, device ----------------------------------------------------------------

  Builder.prototype.edit_audience = function (node, row) {
    var builder = this;
    var body = node.body;
    var membership = select([["true", "is a member of"], ["false", "is not a member of"]],
      String(body.in !== false), { class: "rb-audience-in", "aria-label": "Membership", "data-focus": node.id + "-in" });
    membership.addEventListener("change", function () {
      body.in = membership.value === "true";
      builder.changed(false);
    });
    row.append(membership);
    var choices = this.options.audiences.map(function (audience) { return [String(audience.id), audience.name]; });
    if (body.id && !choices.some(function (choice) { return choice[0] === String(body.id); })) {
      choices.push([String(body.id), "Audience " + body.id]);
    }
    if (!choices.length) {
      row.append(el("span", { class: "rb-word muted", text: "no other audience yet" }));
      return;
    }
    var audience = select(choices, String(body.id), {
      class: "rb-audience", "aria-label": "Audience", "data-focus": node.id + "-audience",
    });
    audience.addEventListener("change", function () {
      body.id = Number(audience.value);
      builder.changed(false);
    });
    row.append(audience);
  };

  Builder.prototype.edit_consent = function (node, row) {
    var builder = this;
    var body = node.body;
    var purpose = select(this.options.consent_purposes, body.purpose, {
      class: "rb-consent-purpose", "aria-label": "Consent purpose", "data-focus": node.id + "-purpose",
    });
    purpose.addEventListener("change", function () {
      body.purpose = purpose.value;
      builder.changed(false);
    });
    var allowed = select([["true", "allows contact"], ["false", "does not allow contact"]],
      String(body.allowed !== false),
      { class: "rb-consent-allowed", "aria-label": "Allowed", "data-focus": node.id + "-allowed" });
    allowed.addEventListener("change", function () {
      body.allowed = allowed.value === "true";
      builder.changed(false);
    });
    row.append(purpose, allowed);
  };

  Builder.prototype.edit_device = function (node, row) {
    var builder = this;
    var body = node.body;
    var has = select([["true", "has an active push device"], ["false", "has no active push device"]],
      String(body.has_active !== false),
      { class: "rb-device-active", "aria-label": "Device", "data-focus": node.id + "-active" });
    has.addEventListener("change", function () {
      body.has_active = has.value === "true";
      builder.changed(false);
    });
    var platform = select([["", "on any platform"]].concat(this.options.platforms.map(function (choice) {
      return [choice[0], "on " + choice[1]];
    })), body.platform || "", {
      class: "rb-device-platform", "aria-label": "Platform", "data-focus": node.id + "-platform",
    });
    platform.addEventListener("change", function () {
      if (platform.value) body.platform = platform.value;
      else delete body.platform;
      builder.changed(false);
    });
    row.append(has, platform);
  };

  // -- problems, by JSON path -------------------------------------------------------------------

  // Mark the deepest builder node each problem's path falls under.
  Builder.prototype.markErrors = function (paths) {
    this.errorPaths = paths;
    var nodes = Array.prototype.slice.call(this.tree.querySelectorAll("[data-path]"));
    nodes.forEach(function (node) { node.classList.remove("rb-has-error"); });
    paths.forEach(function (path) {
      var best = null;
      nodes.forEach(function (node) {
        var own = node.getAttribute("data-path");
        var inside = path === own || path.indexOf(own + ".") === 0 || path.indexOf(own + "[") === 0;
        if (inside && (!best || own.length > best.getAttribute("data-path").length)) best = node;
      });
      if (best) best.classList.add("rb-has-error");
    });
  };

  Builder.prototype.showServerErrors = function (region) {
    if (!region) return;
    var paths = Array.prototype.map.call(region.querySelectorAll("[data-error-path]"), function (item) {
      return item.getAttribute("data-error-path");
    });
    this.markErrors(paths);
  };

  // -- the page ---------------------------------------------------------------------------------

  function syncKind(form) {
    var checked = form.querySelector("input[name=kind]:checked");
    if (!checked) return;
    form.querySelectorAll("[data-rules-only]").forEach(function (section) {
      section.hidden = checked.value !== "rules";
    });
  }

  // Saving waits for incomplete conditions: say how many, and take the person to the first.
  function refuseIncomplete(event, builder) {
    var section = builder.container.closest("[data-rules-only]");
    if (section && section.hidden) return; // a list audience: no rules are saved
    var incomplete = builder.incompleteConditions();
    if (!incomplete.length) return;
    event.preventDefault();
    var count = incomplete.length;
    var region = document.getElementById("rule-errors");
    region.replaceChildren(el("div", { class: "alert alert-error rule-errors", role: "alert", "data-incomplete-alert": true }, [
      el("p", { class: "strong", text: "Complete or remove the " + (count === 1 ? "incomplete condition" : count + " incomplete conditions") + " (marked below) before saving." }),
    ]));
    var first = builder.elements[incomplete[0].id];
    if (first) {
      first.scrollIntoView({ block: "center" });
      var control = first.querySelector("select, input");
      if (control) control.focus();
    }
  }

  function start() {
    var form = document.querySelector("[data-audience-form]");
    if (form) {
      form.addEventListener("change", function (event) {
        if (event.target.name === "kind") syncKind(form);
      });
      syncKind(form);
    }
    var container = document.querySelector("[data-rule-builder]");
    if (!container) return;
    var builder = new Builder(container);
    builder.start();
    if (form) form.addEventListener("submit", function (event) { refuseIncomplete(event, builder); });
    // The estimate names the problems by JSON path: mark them in the builder.
    document.body.addEventListener("htmx:afterSwap", function (event) {
      if (event.target && event.target.id === "estimate-result") builder.showServerErrors(event.target);
    });
  }

  // Deferred, this runs before DOMContentLoaded, after htmx has registered its own listener:
  // htmx wires the estimate's triggers first, so it hears the builder's first "rules-change".
  document.addEventListener("DOMContentLoaded", start);
})();
