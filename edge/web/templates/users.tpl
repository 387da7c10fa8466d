% rebase('layout.tpl', title=title)
% if new_password:
<p class="note">New password for <strong>{{new_password[0]}}</strong>: <code class="secret">{{new_password[1]}}</code>.
  Give it to them in person; it is shown only once.</p>
% end
<div class="table-wrap">
<table class="users">
  <thead><tr><th>User</th><th>E-mail</th><th>Role</th><th>Status</th><th>Templates</th><th>Actions</th></tr></thead>
  <tbody>
  % for u in users:
  <tr>
    <td class="username">{{u.username}}</td><td>{{u.email}}</td><td>{{u.role}}</td>
    <td class="status-{{u.status}}">{{u.status}}</td><td>{{template_counts.get(u.id, 0)}}</td>
    <td class="actions">
      % if web.is_admin():
        % for action, label in user_actions(u, user):
        <form method="post" action="/users/{{u.id}}/{{action}}" class="inline">
          <input type="hidden" name="csrf_token" value="{{csrf_token}}">
          <button type="submit" class="small">{{label}}</button>
        </form>
        % end
        <a class="button small" href="/users/{{u.id}}/enrol">Enrol</a>
        % if u.id != user.id:
        <a class="button small danger" href="/users/{{u.id}}/delete">Delete</a>
        % end
      % elif u.status == 'active':
        <a class="button small" href="/users/{{u.id}}/enrol">Enrol my face</a>
      % end
    </td>
  </tr>
  % end
  </tbody>
</table>
</div>
% if get('invite'):
<p class="note">Invitation code: <code class="secret">{{invite}}</code>. It works once, for seven days; give it
  to the person who should create an account.</p>
% end
% if web.is_admin() and web.cfg.web.signup == 'invite':
<form method="post" action="/invites" class="inline">
  <input type="hidden" name="csrf_token" value="{{csrf_token}}">
  <button type="submit" class="small">Make an invitation code</button>
</form>
% end
% if pending:
<section class="card">
  <h2>Face templates waiting for approval</h2>
  <p class="muted">Members' first photographs, and later ones that do not match their own face, are used at the
  door only after an administrator approves them. Approve only a face that belongs to that person.</p>
  <ul class="verdicts">
  % for u, t, thumb in pending:
    <li class="verdict pending">
      % if thumb:
      <img src="{{thumb}}" alt="Face waiting for approval for {{u.username}}">
      % end
      <div><strong>{{u.username}}</strong> ({{t.source}})
        <form method="post" action="/templates/{{t.id}}/approve" class="inline">
          <input type="hidden" name="csrf_token" value="{{csrf_token}}">
          <button type="submit" class="small">Approve</button>
        </form>
        <form method="post" action="/templates/{{t.id}}/reject" class="inline">
          <input type="hidden" name="csrf_token" value="{{csrf_token}}">
          <button type="submit" class="small danger">Reject</button>
        </form>
      </div>
    </li>
  % end
  </ul>
</section>
% end
<section class="card">
  <h2>Change my password</h2>
  <form method="post" action="/account/password">
    <input type="hidden" name="csrf_token" value="{{csrf_token}}">
    <label>Current password <input name="current" type="password" autocomplete="current-password" required></label>
    <label>New password <input name="password" type="password" autocomplete="new-password" required></label>
    <label>Confirm new password <input name="confirm" type="password" autocomplete="new-password" required></label>
    <button type="submit">Change password</button>
  </form>
</section>
