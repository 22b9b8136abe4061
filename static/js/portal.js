// Behaviour shared by every portal page (no inline handlers: the Content Security Policy
// allows only scripts from our own origin and nonce-carrying inline blocks).
document.addEventListener("change", function (event) {
  var field = event.target;
  if (field && field.hasAttribute && field.hasAttribute("data-autosubmit") && field.form) {
    field.form.submit();
  }
});
