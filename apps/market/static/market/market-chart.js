// Clearing price (line) and traded volume (bars) per interval, from the json_script "market-chart".
(function () {
  var el = document.getElementById("market-chart");
  var canvas = document.getElementById("chart-price");
  if (!el || !canvas || typeof Chart === "undefined") return;
  var data = JSON.parse(el.textContent);
  var volume = data.traded_kwh || (data.traded_wh || []).map(function (v) { return v / 1000; });
  new Chart(canvas, {
    data: {
      labels: data.labels,
      datasets: [
        { type: "line", label: "Clearing price (per kWh)", data: data.price, yAxisID: "price", spanGaps: true },
        { type: "bar", label: "Traded (kWh)", data: volume, yAxisID: "volume" }
      ]
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      scales: {
        x: { type: "time", time: { unit: "hour" } },
        price: { position: "left", title: { display: true, text: "price" } },
        volume: { position: "right", grid: { drawOnChartArea: false }, title: { display: true, text: "kWh" } }
      }
    }
  });
})();
