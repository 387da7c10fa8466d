% rebase('layout.tpl', title=title)
<p class="error">{{message}}</p>
<p class="muted">Error {{status}}. <a href="/">Back to the start page</a></p>
