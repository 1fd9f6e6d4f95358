document.addEventListener("DOMContentLoaded", () => {
  const year = new Date().getFullYear();
  const footer = document.createElement("footer");
  footer.textContent = `© ${year} Acme Rockets`;
  document.body.appendChild(footer);
});
