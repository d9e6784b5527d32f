fn main() {
    for crd in bascule::api::crds() {
        print!("{}", bascule::api::crd_yaml(&crd));
    }
}
