/* The kanban boards (templates/intranet/board.html). The only custom script of the boards:
 * Sortable on each column, posting a drop to the same endpoint the "移至…" menu uses; htmx does
 * the rest. No inline script or style anywhere (CSP). */
(function () {
  "use strict";

  function say(text, level) {
    var live = document.getElementById("board-live");
    if (!live) return;
    var p = document.createElement("p");
    p.className = "board-msg board-msg-" + (level || "error");
    // the page carries these messages in its language (data-msg-* on #board-live)
    p.textContent = live.dataset["msg" + text] || text;
    live.replaceChildren(p);
  }

  // Forget what the board has, so the next poll redraws every column from the server.
  function forgetTokens() {
    document.querySelectorAll('.col-meta[name^="v_"]').forEach(function (input) {
      input.value = "";
    });
  }

  var dragging = false;

  // Sortable leaves style attributes on the cards it touched; htmx copies an old element's
  // attributes onto its replacement while settling, and a copied style attribute breaks the
  // Content Security Policy. Drop them before anything is swapped.
  function clearStyles() {
    document.querySelectorAll(".board .kcard[style], .board .cards[style]").forEach(function (el) {
      el.removeAttribute("style");
    });
  }

  function columnsIn(root) {
    var found = [];
    if (root.matches && root.matches(".board .cards")) found.push(root);
    if (root.querySelectorAll) {
      root.querySelectorAll(".board .cards").forEach(function (list) { found.push(list); });
    }
    return found;
  }

  function init(root) {
    if (typeof Sortable === "undefined") return;
    columnsIn(root).forEach(function (list) {
      var board = list.closest(".board");
      if (!board || board.classList.contains("board-readonly") || list.boardSortable) return;
      list.boardSortable = Sortable.create(list, {
        group: "board-" + board.dataset.direction,
        sort: false, // the order in a column is the server's: most urgent first
        draggable: ".kcard[data-movable]",
        filter: "a, button, select, input, textarea, label, .kcard-slot",
        preventOnFilter: false,
        delay: 150,
        delayOnTouchOnly: true,
        animation: 0, // no transforms on the other cards
        onStart: function () { dragging = true; },
        onEnd: function (evt) {
          dragging = false;
          clearStyles();
          if (evt.from === evt.to) return;
          var card = evt.item;
          var from = evt.from;
          var index = evt.oldIndex;
          htmx.ajax("POST", card.querySelector(".kcard-move").getAttribute("action"), {
            source: card,
            swap: "none",
            values: {
              target: evt.to.dataset.state,
              version: card.dataset.version,
              from_state: from.dataset.state
            }
          }).then(snapBack, snapBack);

          // The answer redraws both columns; if none came (network, server error), put the
          // card back where it was and let the next poll redraw the board.
          function snapBack() {
            if (card.isConnected && card.parentNode !== from) {
              from.insertBefore(card, from.children[index] || null);
              forgetTokens();
            }
          }
        }
      });
    });
  }

  htmx.onLoad(init);

  // A move says which cards each column shows, so the answer can be just the difference
  // (portal/intranet/board.py: _client_columns).
  document.addEventListener("htmx:configRequest", function (evt) {
    if (evt.detail.verb !== "post" || !/\/move$/.test(evt.detail.path)) return;
    document.querySelectorAll(".board .cards").forEach(function (list) {
      var ids = [];
      list.querySelectorAll(":scope > .kcard").forEach(function (card) {
        ids.push(card.id.replace("case-", ""));
      });
      evt.detail.parameters["seen_" + list.dataset.state] = ids.join(",");
    });
  });

  // A refused move (409) or invalid data (422) still carries the fresh columns and the reason.
  // A poll that lands while a card is being dragged waits for the next one.
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var status = evt.detail.xhr.status;
    if (dragging && evt.detail.elt.id === "board-poll") {
      evt.detail.shouldSwap = false;
      forgetTokens();
      return;
    }
    clearStyles();
    if ((status === 409 || status === 422) && evt.detail.elt.closest && evt.detail.elt.closest(".board-page")) {
      evt.detail.shouldSwap = true;
      evt.detail.isError = false;
    }
  });

  document.addEventListener("htmx:responseError", function (evt) {
    var status = evt.detail.xhr.status;
    if (status === 409 || status === 422) return;
    if (status === 401) {
      var poll = document.getElementById("board-poll");
      if (poll) poll.remove(); // stop polling: the session has ended
      say("Expired");
      return;
    }
    say(status === 403 ? "Forbidden" : "Busy");
    forgetTokens();
  });

  document.addEventListener("htmx:sendError", function () {
    say("Offline");
    forgetTokens();
  });

  // After a move the card may have been redrawn in another column: if the focus was lost with
  // the old one, put it on the card's number (an inline form's field keeps it instead).
  document.addEventListener("board:moved", function (evt) {
    var active = document.activeElement;
    if (active && active !== document.body && document.contains(active)) return;
    var target = document.getElementById(evt.detail.focus);
    if (target) target.focus();
  });

  // htmx focuses the [autofocus] field of a newly shown inline form; do it only once, so a later
  // redraw of the board does not pull the focus back there.
  document.addEventListener("htmx:afterSettle", function () {
    document.querySelectorAll(".kcard-form [autofocus]").forEach(function (field) {
      field.removeAttribute("autofocus");
    });
  });
})();
