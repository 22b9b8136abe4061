/* Dashboard charts: consumption (import) and production (export) from #dashboard-data. */
(function () {
  "use strict";
  var node = document.getElementById("dashboard-data");
  if (!node || typeof Chart === "undefined") { return; }
  var data = JSON.parse(node.textContent);

  function datasets(points) {
    return [
      {
        label: "Consumption (Wh)",
        data: points.map(function (p) { return { x: p.t, y: p.import_wh }; }),
        borderColor: "#b45309",
        backgroundColor: "rgba(180, 83, 9, 0.15)",
        fill: true,
        tension: 0.25,
        pointRadius: 0,
      },
      {
        label: "Production (Wh)",
        data: points.map(function (p) { return { x: p.t, y: p.export_wh }; }),
        borderColor: "#0f766e",
        backgroundColor: "rgba(15, 118, 110, 0.15)",
        fill: true,
        tension: 0.25,
        pointRadius: 0,
      },
    ];
  }

  function draw(canvasId, points, unit) {
    var canvas = document.getElementById(canvasId);
    if (!canvas) { return null; }
    var chart = new Chart(canvas, {
      type: "line",
      data: { datasets: datasets(points || []) },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { type: "time", time: { unit: unit, tooltipFormat: "yyyy-MM-dd HH:mm" } },
          y: { beginAtZero: true, title: { display: true, text: "Wh per interval" } },
        },
      },
    });
    canvas.dataset.points = String((points || []).length);
    return chart;
  }

  window.energysphereCharts = {
    today: draw("chart-today", data.today, "hour"),
    week: draw("chart-week", data.week, "day"),
  };
})();
