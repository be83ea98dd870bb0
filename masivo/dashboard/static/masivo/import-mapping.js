// The customer import form: choosing a CSV pre-fills the column mapping from its header, the
// way the server maps columns without one (profiles.imports.default_mapping). Without this
// file the box stays empty and the server applies the same defaults.
(function () {
  "use strict";

  function headerCells(line) {
    var cells = [], cell = "", quoted = false;
    for (var index = 0; index < line.length; index++) {
      var character = line[index];
      if (quoted) {
        if (character === '"' && line[index + 1] === '"') { cell += '"'; index++; }
        else if (character === '"') quoted = false;
        else cell += character;
      } else if (character === '"') quoted = true;
      else if (character === ",") { cells.push(cell.trim()); cell = ""; }
      else cell += character;
    }
    cells.push(cell.trim());
    return cells;
  }

  function firstLine(text) {
    var quoted = false;
    for (var index = 0; index < text.length; index++) {
      if (text[index] === '"') quoted = !quoted;
      if (!quoted && (text[index] === "\n" || text[index] === "\r")) return text.slice(0, index);
    }
    return text;
  }

  document.querySelectorAll("textarea[data-mapping-targets]").forEach(function (box) {
    var form = box.form;
    var fileInput = form && form.querySelector("input[type=file]");
    var note = form && form.querySelector("[data-mapping-note]");
    if (!fileInput || !window.FileReader) return;
    var targets = JSON.parse(box.dataset.mappingTargets);
    var filled = null;  // what we wrote, so a box the user edited is never overwritten

    function isTarget(name) {
      if (name === "ignore" || targets.indexOf(name) !== -1) return true;
      var dot = name.indexOf(".");
      var prefix = name.slice(0, dot), key = name.slice(dot + 1).trim();
      return dot > 0 && (prefix === "traits" || prefix === "tags") && key !== "";
    }

    function targetFor(column) {
      var lowered = column.toLowerCase().replace(/ /g, "_");
      if (isTarget(lowered)) return lowered;
      if (isTarget(column)) return column;
      return "traits." + column;
    }

    fileInput.addEventListener("change", function () {
      var file = fileInput.files && fileInput.files[0];
      if (!file || (box.value.trim() && box.value !== filled)) return;
      var reader = new FileReader();
      reader.onload = function () {
        var columns = headerCells(firstLine(String(reader.result).replace(/^\uFEFF/, "")));
        var mapping = {}, fields = [], traits = [];
        columns.forEach(function (column) {
          if (!column) return;
          mapping[column] = targetFor(column);
          (mapping[column].indexOf("traits.") === 0 ? traits : fields).push(column);
        });
        filled = JSON.stringify(mapping, null, 2);
        box.value = filled;
        if (note) {
          note.hidden = false;
          note.textContent = "Pre-filled from the file's header: " +
            (fields.length ? fields.join(", ") + " map to fields" : "no column maps to a field") +
            (traits.length ? "; " + traits.join(", ") + " become traits" : "") +
            ". Set a column to \"ignore\" to leave it out.";
        }
      };
      reader.readAsText(file.slice(0, 65536));
    });
  });
})();
