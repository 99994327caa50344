import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { PermissionReview } from "./PermissionReview";

const perms = [
  { name: "kv.write", reason: "store counts", risk: "low", grants: "Store data in its own storage." },
  { name: "message.content.read", reason: "keep the last message", risk: "high", optional: true, grants: "Read message text." },
  { name: "http.fetch", risk: "high", optional: true, hosts: ["hooks.example"], grants: "Call web services." },
];

test("shows every permission with its risk in plain words before granting", () => {
  render(<PermissionReview permissions={perms} granted={[]} onGrant={() => {}} />);
  expect(screen.getByText("kv.write")).toBeInTheDocument();
  expect(screen.getAllByText(/High risk: it can read private content/)).toHaveLength(2);
  expect(screen.getByText(/Low risk/)).toBeInTheDocument();
  expect(screen.getByText("Why: keep the last message")).toBeInTheDocument();
  expect(screen.getByText("Hosts: hooks.example")).toBeInTheDocument();
});

test("required permissions are always granted, optional ones only when ticked", async () => {
  const onGrant = vi.fn();
  render(<PermissionReview permissions={perms} granted={[]} onGrant={onGrant} />);
  const required = screen.getByLabelText(/kv.write/);
  expect(required).toBeChecked();
  expect(required).toBeDisabled();
  await userEvent.click(screen.getByRole("button", { name: "Grant 1 permission" }));
  expect(onGrant).toHaveBeenLastCalledWith(["kv.write"]);
  await userEvent.click(screen.getByLabelText(/http.fetch/));
  await userEvent.click(screen.getByRole("button", { name: "Grant 2 permissions" }));
  expect(onGrant).toHaveBeenLastCalledWith(["kv.write", "http.fetch"]);
});
