"""The intake app's look and its one small script: large text for a laptop at 1366×768, a
focus ring that shows where the keyboard is, a print view of the receipt; the script checks
an ID number as it is typed (the server checks it again) and prints on a button's press."""

STYLE = """
body{font-size:19px;line-height:1.5}
header{flex-wrap:wrap;gap:1em}
header nav{display:flex;gap:1.2em}
.link{margin-left:auto;font-size:.85em;display:flex;gap:1em;align-items:center}
.on,.off{padding:.05em .5em;border-radius:3px;font-weight:bold}
.on{background:#2e7d32}
.off{background:#fff;color:#b71c1c}
main{max-width:1280px}
a:focus,button:focus,input:focus,select:focus,textarea:focus{outline:3px solid #1565c0;outline-offset:2px}
input,button,select,textarea{font-size:1em;font-family:inherit;padding:.25em .5em}
input[type=text],input:not([type]),textarea{width:24em;max-width:100%}
label{display:block;margin:.6em 0 .15em;font-weight:bold}
label.choice{font-weight:normal;margin:.3em 0}
fieldset{border:1px solid #bbb;border-radius:6px;margin:1em 0;padding:.4em 1em .8em}
legend{font-weight:bold;padding:0 .3em}
button.primary,a.primary{background:#b71c1c;color:#fff;border:0;border-radius:4px;padding:.35em 1.4em;
cursor:pointer;text-decoration:none;display:inline-block;margin:.6em 0}
ol.items li{margin:.35em 0}
.hint{color:#555;font-size:.85em;margin-left:.5em}
.ok{color:#2e7d32}
.missing{border:3px solid #e65100;background:#fff3e0;padding:.4em 1em;margin:1em 0}
.missing ol{font-size:1.15em;font-weight:bold}
.notice{background:#e8f5e9;border-left:6px solid #2e7d32;padding:.4em 1em}
.error{background:#ffebee;border-left:6px solid #b71c1c;padding:.4em 1em}
table{font-size:.95em}
td.wrap{white-space:normal;min-width:14em}
td.todo{background:#fff3e0}
.queued{background:#fff176;padding:0 .3em;border-radius:3px;font-size:.85em}
dl.guide dt{font-weight:bold;margin-top:.7em}
dl.guide dd{margin:.1em 0 0 1.2em}
.receipt th{width:8em;vertical-align:top}
.receipt td{white-space:normal;min-width:30em}
.sign{display:flex;gap:6em;margin-top:2.5em}
.actions{display:flex;flex-wrap:wrap;gap:0 2em}
@media print{header,.noprint{display:none}body{font-size:13pt}main{padding:0}}
"""

# Messages come from the input's data-* attributes (the catalog's words, put there by the page).
SCRIPT = """
document.querySelectorAll("input[data-idcheck]").forEach(function (box) {
  var note = document.getElementById(box.id + "-note");
  var weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  function check() {
    var value = box.value.trim().toUpperCase(), message = "", sum = 0;
    if (value && !/^[0-9]{0,17}[0-9X]?$/.test(value)) {
      message = box.dataset.shape;
    } else if (value.length === 18) {
      for (var i = 0; i < 17; i++) { sum += Number(value[i]) * weights[i]; }
      if ("10X98765432"[sum % 11] !== value[17]) { message = box.dataset.digit; }
    }
    box.setCustomValidity(message);
    note.textContent = message || (value.length === 18 ? box.dataset.ok : "");
    note.className = message ? "error" : "ok";
  }
  box.addEventListener("input", check);
  check();
});
document.querySelectorAll("button[data-print]").forEach(function (button) {
  button.addEventListener("click", function () { window.print(); });
});
"""
