% rebase('layout.tpl', title=title)
<form method="post" action="/users/{{target.id}}/delete" class="card">
  <input type="hidden" name="csrf_token" value="{{csrf_token}}">
  <p>Delete <strong>{{target.username}}</strong> ({{target.email}}) and all their face templates? This cannot be undone.</p>
  <input type="hidden" name="confirm" value="yes">
  <button type="submit" class="danger">Delete {{target.username}}</button>
  <a href="/users">Cancel</a>
</form>
